// Package natsstore is the thread registry on NATS JetStream: a
// registry.Store whose records live in one JetStream KV bucket, so that
// AutoNode processes on several machines share one registry.
//
// Layout of the bucket: a thread under "t.<key>", its archive entry under
// "a.<key>" (the same bucket, so that a delete is one atomic step), the
// highest id ever written under "m.max_id" (NextID in O(1)), where <key>
// is the registry key ("1.5", "1e-05") encoded into one subject token by
// EncodeKey ("1_5", "1e-05"). Values are the records' JSON, as in
// thread_registry.json.
//
// Each process keeps a copy of the bucket, fed in stream order by an
// ordered consumer. View and Update first bring it up to the stream's
// last sequence (asked of the stream's leader), so a transaction sees
// every commit acknowledged before it began. An Update commits its
// changes as one atomic batch (ADR-50): every written key carries the
// sequence it had when read (Nats-Expected-Last-Subject-Sequence), every
// key only read gets a check message naming it, and a transaction that
// ranged over the whole registry expects the stream's last sequence. The
// server applies all of it or none; when anything read has changed it
// refuses (err_code 10071 / 10164), and Update runs the function again on
// the new state, up to Options.MaxAttempts times (ErrContention). A
// commit whose acknowledgement is lost is sent again with the same
// Nats-Msg-Id, so that one that was applied is recognised as a duplicate
// rather than applied twice; when that cannot settle it, Update returns
// ErrUnknownOutcome.
//
// The store also keeps threads' outputs (registry.Outputs) beside the
// bucket: stored results in a JetStream object store, logs and metrics in
// two streams with a subject per thread (see outputs.go).
//
// Run the servers with SyncAlways (natsnode does): JetStream's default
// fsync interval lost acknowledged writes in Jepsen's analysis of NATS
// 2.12.1.
package natsstore
