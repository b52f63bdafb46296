package approval

// WatchMemoryOutbox makes a gate built from c call claim after each claim
// of its in-memory outbox (a Store without Outbox), with the channel and
// the IDs claimed, and settle after each settlement: the test's signal
// that delivery looked at the outbox, in place of a sleep.
func WatchMemoryOutbox(c *Config, claim func(channel string, ids []string), settle func(id string)) {
	c.outboxWatch = outboxWatch{claim: claim, settle: settle}
}
