// Package engine is the map/reduce coordinator: it turns a submitted job into
// map tasks, hands tasks to connected workers under leases, commits each
// result with the ack of its lease in one store transaction, shuffles map
// output into partition queues, runs the reduce tasks and keeps the final
// output in the job's output queue. It knows nothing of HTTP: workers reach it
// through a Transport (a WebSocket, or an in-process pipe).
package engine

import (
	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/wasm/abi"
)

// The API's types are the contract package's (api); these names are the
// same types.
type (
	// State is api.State.
	State = api.State
	// Phase is api.Phase.
	Phase = api.Phase
	// Spec is api.Spec.
	Spec = api.Spec
	// PhaseCounts is api.PhaseCounts.
	PhaseCounts = api.PhaseCounts
	// Status is api.Status.
	Status = api.Status
)

// Job states and phases (api's).
const (
	StateQueued    = api.StateQueued
	StateMapping   = api.StateMapping
	StateReducing  = api.StateReducing
	StateDone      = api.StateDone
	StateFailed    = api.StateFailed
	StateCancelled = api.StateCancelled
	PhaseMap       = api.PhaseMap
	PhaseReduce    = api.PhaseReduce
)

// Defaults for Spec (api's).
const (
	DefaultChunkSize   = api.DefaultChunkSize
	DefaultReducers    = api.DefaultReducers
	DefaultMaxAttempts = api.DefaultMaxAttempts
	DefaultTaskTimeout = api.DefaultTaskTimeout
)

// Pair is one output record.
type Pair = abi.Pair
