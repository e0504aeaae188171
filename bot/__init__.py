"""esxbot: a ChatOps bot for VMware ESXi fleets."""
