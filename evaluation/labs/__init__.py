"""Reports of the concurrent-labs problem: the CPE table, Table 2, Figure 1."""
