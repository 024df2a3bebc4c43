"""The Linux host backend (issue 13): real kernel interfaces behind HostBackend."""
