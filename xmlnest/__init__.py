"""xmlnest: enable nested virtualization in libvirt domain XML without reformatting it."""

__version__ = "0.1.0"
