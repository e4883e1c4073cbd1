.PHONY: test demo bench

# Install what is needed and run every test (unit, integration, system).
test:
	scripts/test

# Install what is needed, bring up broker + Ganeti cluster + agent and print the AMQP feed.
demo:
	scripts/demo

# Run the benchmarks in bench/ (each prints ours, the peer's, and the ratio).
bench:
	scripts/bench
