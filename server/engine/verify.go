package engine

import (
	"math/rand/v2"

	"github.com/tabreduce/tabreduce/api"

	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Verify is api.Verify.
type Verify = api.Verify

// Verification modes (api's).
const (
	VerifyNone      = api.VerifyNone
	VerifyReplicate = api.VerifyReplicate
	VerifyAdaptive  = api.VerifyAdaptive
	VerifySpotcheck = api.VerifySpotcheck
)

// verifier decides what a worker's result leads to: commit it now, hold it
// until another worker (or the server) agrees, or count it against its
// worker. The committer speaks to verification only through it; checker
// (check.go) is the engine's implementation.
type verifier interface {
	// result handles a worker's result for copy c.
	result(c *taskCopy, r commitReq) verdict
	// serverResult folds the server's own run of a held task in.
	serverResult(r commitReq) verdict
	// probe checks a known-answer probe's result: false means its worker
	// returned a wrong answer.
	probe(c *taskCopy, r commitReq) bool
}

// verdict is what a verifier decided about one result.
type verdict struct {
	commit   *commitReq // the result to commit now, if any
	cheaters []*session // workers whose results lost
	release  bool       // the task has nothing running or held: give it back
	// fail is a failure of the task to count (the server's own run failed
	// too); refuse are workers whose failures the server contradicted too
	// often.
	fail   *commitReq
	refuse []*session
}

// Verification parameters.
const (
	// probation is how many agreed results a worker needs before adaptive
	// verification samples it instead of checking every result.
	probation = 10
	// sampleRate is the share of results checked once a worker has standing
	// (adaptive) and of tasks re-run by the server (spotcheck).
	sampleRate = 0.1
	// auditRate is the share of results agreed by untrusted workers alone
	// that adaptive verification has the server re-run: a mismatch catches
	// every worker that agreed. A forged result that colluders agree on
	// escapes with probability 1 − auditRate.
	auditRate = 0.1
	// maxHeld bounds the results gathered for one task before it is given
	// up as one the workers cannot agree on.
	maxHeld = 5
	// knownPerJob bounds the known answers kept per job for probes, and
	// maxProbeInput the input of one: a probe should be cheap.
	knownPerJob   = 16
	maxProbeInput = 1 << 20
)

// ParseVerify validates a mode; "" is the default, adaptive.
func ParseVerify(s string) (Verify, error) { return api.ParseVerify(s) }

type (
	// Standing is api.Standing.
	Standing = api.Standing
	// VerifyCounts is api.VerifyCounts.
	VerifyCounts = api.VerifyCounts
)

// resultHash is the canonical output hash of a result (wp.ResultHash):
// deterministic modules give the same hash on every worker.
func resultHash(r *wp.Result) [32]byte { return wp.ResultHash(*r) }

// heldResult is a result kept aside until enough workers agree with it. s
// is nil for the server's own run.
type heldResult struct {
	req  commitReq
	hash [32]byte
	s    *session
}

// knownAnswer is a task whose verified result hash the server knows: sent
// to a new worker as a probe, it tells cheaply whether the worker is honest.
type knownAnswer struct {
	task *task
	hash [32]byte
}

// needsCheck decides whether a result of s under mode must be verified
// before it is committed. e.mu held.
func needsCheck(mode Verify, s *session) bool {
	if s.peer.Trusted {
		return false
	}
	switch mode {
	case VerifyReplicate:
		return true
	case VerifyAdaptive:
		return s.standing.Agreed < probation || rand.Float64() < sampleRate
	case VerifySpotcheck:
		return rand.Float64() < sampleRate
	}
	return false
}

// majority returns the hash that two distinct workers returned, or that
// the server computed (the server is trusted).
func majority(held []heldResult) (win [32]byte, ok bool) {
	seen := map[[32]byte]map[*session]bool{}
	for _, h := range held {
		if h.s == nil {
			return h.hash, true
		}
		if seen[h.hash] == nil {
			seen[h.hash] = map[*session]bool{}
		}
		seen[h.hash][h.s] = true
		if len(seen[h.hash]) >= 2 {
			return h.hash, true
		}
	}
	return win, false
}
