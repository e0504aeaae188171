"""Host actions: the durable job runner and its steps, pre-checks, job cards, esxcli, Redfish and BMCs."""
