"""The follow-up graph's nodes, one a file, each named like the node it registers."""
