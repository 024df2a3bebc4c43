"""`pagetide trace`: convert real programs' memory traces into .pgtrace files, and summarise one.

`trace convert {lackey,damo} INPUT OUTPUT [options]` runs a converter (`lackey`, `damo`); `trace info TRACE`
prints a trace's header summary (a file, or a shipped trace's name). One subcommand module:
`set_argparser(parser)` and `main(args) -> int`; the converters are imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["set_argparser", "main"]


def set_argparser(p: argparse.ArgumentParser) -> None:
    tsub = p.add_subparsers(dest="trace_command", required=True)
    c = tsub.add_parser("convert", help="convert a lackey log or a damo record into a .pgtrace file")
    c.add_argument("format", choices=("lackey", "damo"))
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument("--program", default="", help="what was traced (stored in the header)")
    c.add_argument("--page-size", default="4KiB")
    c.add_argument("--chunk-size", default="4MiB", help="bytes of input read at a time")
    c.add_argument("--epoch-accesses", default="1M", help="lackey: memory accesses per epoch")
    c.add_argument("--instructions", choices=("skip", "read"), default="skip",
                   help="lackey: skip instruction fetches or count them as reads")
    c.add_argument("--record", type=int, default=0, help="damo: index of the record (monitoring target)")
    c.add_argument("--snapshots-per-epoch", type=int, default=1, help="damo: snapshots merged into one epoch")
    i = tsub.add_parser("info", help="print a trace's header summary")
    i.add_argument("trace", help="a .pgtrace file or a shipped trace's name")


def main(args: argparse.Namespace) -> int:
    command = {"convert": _convert, "info": _info}[args.trace_command]
    try:
        print(command(args))
    except (OSError, ValueError) as e:
        print(f"pagetide: trace {args.trace_command}: {e}", file=sys.stderr)
        return 2
    return 0


def _convert(args: argparse.Namespace) -> str:
    from pagetide.common import units

    if args.format == "lackey":
        from pagetide.agent.traces.lackey import convert_lackey

        t = convert_lackey(args.input, args.output, epoch_accesses=units.parse_count(args.epoch_accesses),
                           page_size=units.parse_size(args.page_size), instructions=args.instructions,
                           program=args.program, chunk_size=units.parse_size(args.chunk_size))
    else:
        from pagetide.agent.traces.damo import convert_damo

        t = convert_damo(args.input, args.output, record=args.record,
                         snapshots_per_epoch=args.snapshots_per_epoch, page_size=units.parse_size(args.page_size),
                         program=args.program, chunk_size=units.parse_size(args.chunk_size))
    return _summary(t)


def _info(args: argparse.Namespace) -> str:
    from pagetide.agent.traces.shipped import open_trace

    return _summary(open_trace(args.trace))


def _summary(t) -> str:
    from pagetide.common import units

    h = t.header
    return (f"{t.path}: {h['source']} trace of {h.get('program') or '?'}: {t.npages} pages "
            f"({units.format_size(t.npages * t.page_size)}), {t.nepochs} epochs of {h.get('epoch_length')} "
            f"{h.get('epoch_unit')}, {h.get('reads', 0)} reads, {h.get('writes', 0)} writes, "
            f"{units.format_size(t.path.stat().st_size)} on disk")
