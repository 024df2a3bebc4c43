"""The controller's subcommands of `pagetide`, one module each (`set_argparser(parser)` and `main(args)`)."""
