"""What every provider's sandbox shares: the loopback server, fault plans, the rate
limit, config validation, and the report workbooks the UiTPAS sandboxes serve."""
