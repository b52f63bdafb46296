// Package delivery is the gate's one delivery engine: it claims messages
// from an outbox, sends them, retries them on a schedule and dead-letters
// them, whatever keeps the outbox (a database, a Store's memory, or the
// gate's in-memory adapter for a Store without one). It knows nothing of
// requests, notifications or audit events: a Handler claims, expands,
// sends and settles, and the engine decides when, how many at once, and
// with which outcome.
//
// # Two stages
//
// A notice (lane "") says that something is to be notified; one goroutine
// claims due notices in batches and has the Handler expand each into
// deliveries, one at a time. A delivery belongs to one channel's lane;
// each lane has a goroutine that keeps up to Lane.Slots sends in flight,
// claiming as many due deliveries as it has free slots, so that one
// recipient whose sends hang does not hold up the lane's others, and
// memory is bounded by the claims, however many messages wait.
//
// # Guarantees
//
//   - At least once: a message leaves the outbox only when its Handler
//     settles it as done or dead. A claim is a lease (Config.Lease, longer
//     than a send may take): if the process dies holding it, the message
//     goes to the next claim once the lease ends, possibly in another
//     process, and is sent again.
//   - No ordering: deliveries are claimed oldest NextAttempt first, but up
//     to Lane.Slots of them are in flight at once, and a retry goes behind
//     the messages due before it.
//   - Retries: a failed attempt is retried after Policy.Wait, until the
//     lane's Policy.MaxAttempts; a failure the Handler classifies as
//     permanent, or the last attempt, is dead.
//   - A lane whose sends run out of time is blocked (Breaker): after
//     BlockAfter such sends in a row its deliveries are not sent but
//     postponed (not an attempt) until a probe, one send each ProbeEvery,
//     returns in time.
//
// # Close
//
// Runner.Close stops claiming new notices once none is due, lets every
// lane send what is due now (each due message is attempted once more at
// most), and returns nil when all are settled. If its context ends first,
// it cancels the sends in flight (their outcome is not settled: their
// leases end and they are claimed again) and returns the context's error
// after at most a second's grace.
package delivery
