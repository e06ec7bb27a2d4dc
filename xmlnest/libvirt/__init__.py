"""libvirt as a place domains live: connections (libvirt-python or virsh), the domain source,
and the status verdicts. Never imports the CLI."""
