"""Hosts esxbot knows: static inventory files, the bundled demo fleet, and the merged view with vCenter."""
