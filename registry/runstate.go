package registry

import "fmt"

// PutRun records the run state of thread t, as the process that runs the
// thread's current attempt sees it, without a token: a worker of a
// cluster runs what a queue hands it and holds no thread's token, and a
// sweeper records that a run's lease expired. Only the run state is
// taken from t (status, result, error, started_at, finished_at,
// duration_ms, device_used, cached, cache_key, owner, attempts, the
// members of the run-state object this version does not know) and the
// history lines t adds to the stored history; every other field (name,
// stage, device, sandbox, metadata, lineage, after, retry policy, cancel
// request, the user's fields, the token hashes) stays as stored, so that
// a runner can record what happened but never change what the thread is.
//
// check, when not nil, is called with the stored record before anything
// is written, and its error is returned as it is: the fence that refuses
// a writer whose lease was taken over. A missing thread is ErrNotFound.
func (tx *Tx) PutRun(t *Thread, check func(stored *Thread) error) error {
	if err := tx.check(true); err != nil {
		return err
	}
	r, ok := tx.record(t.ID.Key())
	if !ok {
		return fmt.Errorf("thread %s: %w", t.ID, ErrNotFound)
	}
	stored, err := decodeThread(r)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(stored); err != nil {
			return err
		}
	}
	n := stored.Clone()
	n.Status, n.Result, n.Error = t.Status, t.Result, t.Error
	n.StartedAt, n.FinishedAt, n.DurationMS = t.StartedAt, t.FinishedAt, t.DurationMS
	n.DeviceUsed, n.Cached, n.CacheKey, n.Owner = t.DeviceUsed, t.Cached, t.CacheKey, t.Owner
	n.Attempts = append([]Attempt(nil), t.Attempts...)
	n.RunExtra = cloneRaw(t.RunExtra)
	if hasPrefix(t.History, stored.History) {
		n.History = append(n.History, t.History[len(stored.History):]...)
	} else {
		n.History = append(n.History, t.History...)
	}
	if err := tx.write(n); err != nil {
		return err
	}
	t.Version = n.Version
	return nil
}
