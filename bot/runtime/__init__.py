"""The running bot: composition root (app), command line, web endpoints, leadership, logging, metrics."""
