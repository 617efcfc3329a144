package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/wasm/runner"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Config bounds the engine. Zero fields take the defaults.
type Config struct {
	DataDir      string // job inputs under jobs/, modules under modules/
	MaxInput     int64  // bytes of input per job (default 4 GiB)
	MaxTaskBytes int    // largest task input or result (default 64 MiB)
	// WorkerFrameBytes is the largest frame a worker reads (default
	// workerproto.DefaultMaxFrameBytes): no TASKS frame is larger.
	WorkerFrameBytes  int
	HeartbeatInterval time.Duration // what workers are told (default 5 s); 3 missed drop a worker
	PrefetchPerSlot   int           // tasks sent beyond a worker's free slots (default 1)
	// SpillBytes: a run (a map task's output for one partition, or a
	// reduce task's output) larger than this is kept in a file rather than
	// in the store, so that what memory holds of a job stays small whatever
	// its size (default 64 KiB).
	SpillBytes int
	// JobRetention is how long a finished job is kept before it is deleted
	// (default DefaultJobRetention; negative: kept until deleted).
	JobRetention time.Duration
	// Builtins are the built-in jobs' modules by name, run as trusted code;
	// the wiring supplies them (the engine does not know the example jobs).
	Builtins map[string][]byte
	// BuiltinEncodings are compressed forms of the built-ins made by the
	// build: name → content coding (modenc.Brotli, modenc.Gzip) → bytes.
	// A built-in without them is served uncompressed.
	BuiltinEncodings map[string]map[string][]byte
	// Observer is told of tasks ending and of verification work, for
	// metrics (default: nobody).
	Observer Observer
	// MaxWorkerSlots bounds the slots the engine believes of an untrusted
	// worker, and so the tasks it may hold (default
	// DefaultMaxWorkerSlots): a worker that declares more gets no more.
	MaxWorkerSlots int
	// SameNetworkReplicas accepts replicas that agree from distinct
	// sessions on one network as if they came from distinct networks (a
	// lab or one machine whose workers the operator knows). Without it
	// such agreement is accepted only when no worker of another network
	// could run the replica, and counted as weaker evidence.
	SameNetworkReplicas bool
	// ServerChecks bounds the server's own runs of tasks (disputes,
	// audits, confirmations of failures) at once (default half the CPUs,
	// at least 1).
	ServerChecks int
	// Shared is the blob store of a service of several servers on one
	// store (Redis): job inputs, spilled runs and uploaded modules go there,
	// so that every server can run every job's tasks, and jobs are
	// coordinated by a lease (shared.go). Nil: this server is alone, and
	// keeps them in DataDir.
	Shared blob.Store
	// Server is this server's name among those sharing the store.
	Server string
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxInput <= 0 {
		c.MaxInput = 4 << 30
	}
	if c.MaxTaskBytes <= 0 {
		c.MaxTaskBytes = 64 << 20
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.WorkerFrameBytes <= 0 {
		c.WorkerFrameBytes = wp.DefaultMaxFrameBytes
	}
	if c.PrefetchPerSlot <= 0 {
		c.PrefetchPerSlot = 1
	}
	if c.SpillBytes <= 0 {
		c.SpillBytes = DefaultSpillBytes
	}
	if c.JobRetention == 0 {
		c.JobRetention = DefaultJobRetention
	}
	if c.MaxWorkerSlots <= 0 {
		c.MaxWorkerSlots = DefaultMaxWorkerSlots
	}
	if c.ServerChecks <= 0 {
		c.ServerChecks = max(1, runtime.NumCPU()/2)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
}

// DefaultSpillBytes is Config.SpillBytes's default.
const DefaultSpillBytes = 64 << 10

// Engine is the map/reduce coordinator.
type Engine struct {
	cfg    Config
	q      Queues
	runner *runner.Runner
	mods   *modules
	log    *slog.Logger

	mu       sync.Mutex
	jobs     map[string]*job
	sessions map[string]*session
	copies   map[uint64]*taskCopy
	copySeq  uint64
	// preparing counts the tasks handed to preparers, not yet to workers;
	// leasing is set while the dispatcher leases tasks for them.
	preparing int
	leasing   bool
	intake    intake // tasks handed out a second, for leasing ahead (ahead.go)
	closed    bool
	banned    map[string]bool // workers caught returning wrong results (session.banKey)
	// caughtAt counts the untrusted workers caught per address: at
	// addrBanAfter the address is refused whatever name a worker gives
	// whatever they call themselves; tainted counts the workers caught per
	// network (networkOf): every result from a tainted network is checked.
	caughtAt   map[string]int
	tainted    map[string]int
	serverRuns chan struct{} // a slot per server check that may run
	flagged    []WorkerInfo

	tasksDone   atomic.Int64 // committed tasks since start
	bytesDone   atomic.Int64 // their input bytes
	mergedPairs atomic.Int64 // pairs read by partition merges

	setAside []SetAside // records that did not load at start

	streamMu sync.Mutex
	streams  map[string]int // input queue → running streaming jobs on it

	verifier verifier

	// The services, and the goroutines that prepare tasks and check
	// results on the server.
	dispatcher, committer, watchdog, retention, sharer *service
	preparers                                          sync.WaitGroup
	merging                                            chan struct{} // a slot per partition merge that may run
	checks                                             sync.WaitGroup

	// When servers share the store (shared.go): what the sharer read of
	// the other servers' workers and bans, and the jobs events named.
	remote    remoteState
	syncC     chan struct{}
	dirtyMu   sync.Mutex
	advanceMu sync.Mutex
	dirty     map[string]bool

	stopWatch func()
	kickC     chan struct{}
	gatherC   chan struct{} // wakes a batch waiting for results (commit.go)
	commitC   chan commitReq
	ctx       context.Context // the engine's life: cancelled by Close
	cancel    context.CancelFunc
}

// New starts the engine on the broker's Internal handle, resuming every job
// that was running when the server last stopped.
func New(ctx context.Context, cfg Config, q Queues, r *runner.Runner) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{
		cfg: cfg, q: q, runner: r, log: cfg.Logger,
		jobs: map[string]*job{}, sessions: map[string]*session{}, copies: map[uint64]*taskCopy{}, banned: map[string]bool{},
		caughtAt: map[string]int{}, tainted: map[string]int{}, serverRuns: make(chan struct{}, cfg.ServerChecks),
		streams: map[string]int{}, kickC: make(chan struct{}, 1), gatherC: make(chan struct{}, 1), commitC: make(chan commitReq, 1024),
		merging: make(chan struct{}, maxMerging),
		syncC:   make(chan struct{}, 1), dirty: map[string]bool{},
	}
	e.verifier = checker{e}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	var err error
	if e.mods, err = newModules(filepath.Join(cfg.DataDir, "modules"), cfg.Builtins, cfg.BuiltinEncodings, r, cfg.Logger); err != nil {
		return nil, err
	}
	e.mods.shared = cfg.Shared
	if err := e.recover(ctx); err != nil {
		e.cancel()
		return nil, fmt.Errorf("resume jobs: %w", err)
	}
	e.stopWatch = q.Watch(e.onEvent)
	e.committer = startService(e.ctx, "committer", e.commitLoop)
	e.dispatcher = startService(e.ctx, "dispatcher", e.dispatchLoop)
	e.watchdog = startService(e.ctx, "watchdog", e.watchLoop)
	if cfg.JobRetention > 0 {
		e.retention = startService(e.ctx, "retention", e.retentionLoop)
	}
	if e.shared() {
		e.sharer = startService(e.ctx, "sharer", e.syncLoop)
	}
	e.kick()
	return e, nil
}

// Close ends every worker session and stops the engine's goroutines.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	sessions := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		sessions = append(sessions, s)
	}
	e.mu.Unlock()
	for _, s := range sessions {
		s.close("server shutting down")
	}
	e.watchdog.stop()
	e.retention.stop()
	e.sharer.stop()
	e.leaveService()
	e.dispatcher.stop()
	e.returnAll()
	e.cancel() // preparers and server checks end with the engine's context
	e.preparers.Wait()
	e.checks.Wait()
	e.committer.stop()
	e.stopWatch()
	return nil
}

// kick wakes the dispatcher.
func (e *Engine) kick() {
	select {
	case e.kickC <- struct{}{}:
	default:
	}
}

// AddModule validates and registers a module, returning its sha256. name,
// if not "", is what the upload was called (its file's name): jobs and the
// module list show it.
func (e *Engine) AddModule(ctx context.Context, wasm []byte, name string) (string, error) {
	return e.mods.put(ctx, wasm, name)
}

// ModulePath returns the file of a registered module, for serving.
func (e *Engine) ModulePath(sha string) (string, error) { return e.mods.path(sha) }

// ModuleEncodedPath returns the file of a registered module compressed in
// the content coding enc (modenc.Brotli, modenc.Gzip; modenc.Identity is
// the module itself), or ErrModuleNotFound if it is not kept that way.
func (e *Engine) ModuleEncodedPath(sha, enc string) (string, error) {
	return e.mods.encodedPath(sha, enc)
}

// Modules lists the registered modules, built-ins first.
func (e *Engine) Modules() []ModuleInfo { return e.mods.list() }

// Job returns one job's status.
func (e *Engine) Job(ctx context.Context, id string) (Status, error) {
	j := e.lookup(ctx, id)
	if j == nil {
		return Status{}, fmt.Errorf("%w: %s", ErrJobNotFound, truncate(id, 64))
	}
	return e.status(ctx, j), nil
}

// Jobs returns every job's status, newest first.
func (e *Engine) Jobs(ctx context.Context) ([]Status, error) {
	e.mu.Lock()
	js := make([]*job, 0, len(e.jobs))
	for _, j := range e.jobs {
		js = append(js, j)
	}
	e.mu.Unlock()
	sort.Slice(js, func(a, b int) bool { return js[a].rec.Submitted.After(js[b].rec.Submitted) })
	out := make([]Status, len(js))
	for i, j := range js {
		out[i] = e.status(ctx, j)
	}
	return out, nil
}

// status builds a job's Status; pending counts come from its queues.
func (e *Engine) status(ctx context.Context, j *job) Status {
	e.statusSums(ctx, j)
	e.mu.Lock()
	if e.sumsStaleLocked(j) {
		// It ended since: its final sums first.
		e.mu.Unlock()
		e.statusSums(ctx, j)
		e.mu.Lock()
	}
	st := Status{
		ID: j.rec.ID, State: j.rec.State, Spec: j.rec.Spec, ModuleSHA: j.rec.Module, ReducerSHA: j.rec.Reducer,
		BytesIn: j.rec.BytesIn, BytesOut: j.bytesOut, Records: j.records,
		Counters: map[string]int64{}, Error: j.rec.Error,
		Submitted: j.rec.Submitted, Started: j.rec.Started, MapDone: j.rec.MapDone, Finished: j.rec.Finished,
		OutputQueue: j.rec.Spec.OutputQueue, Phases: map[Phase]PhaseCounts{}, Verification: j.counts, BackupCopies: j.backups, SpilledRuns: j.spilled.Load(),
	}
	for k, v := range j.counters {
		st.Counters[k] = v
	}
	running := map[Phase]int{}
	for _, t := range j.running {
		running[t.phase]++
	}
	for _, p := range []Phase{PhaseMap, PhaseReduce} {
		st.Phases[p] = PhaseCounts{Total: j.total(p), Running: running[p], Done: j.done[p], Failed: j.failed[p],
			MeanSeconds: j.avgTask[p].Seconds()}
	}
	if e.shared() {
		e.sharedStatusLocked(j, &st)
	}
	e.mu.Unlock()
	st.ModuleName = e.mods.name(st.ModuleSHA)
	for _, p := range []Phase{PhaseMap, PhaseReduce} {
		pc := st.Phases[p]
		if !st.State.Finished() {
			pc.Pending = max(pc.Total-pc.Done-pc.Running, 0)
		}
		if st.Spec.Stream && p == PhaseMap {
			if info, err := e.q.Stats(ctx, st.Spec.InputQueue); err == nil {
				pc.Pending = int(info.Length)
			}
		}
		st.Phases[p] = pc
	}
	return st
}

// newJobID returns a short id that sorts by time: base-36 milliseconds and
// four random hex digits, safe in queue names.
func newJobID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(b[:])
}

var errStopped = errors.New("engine stopped")

// LoadModule loads a registered module into the engine's runner, which
// in-process workers share with it.
func (e *Engine) LoadModule(ctx context.Context, sha string) error {
	return e.mods.ensureCompiled(ctx, sha)
}

// Totals is api.Totals.
type Totals = api.Totals

// Totals returns the engine's throughput counters; rates are their
// differences over time.
func (e *Engine) Totals() Totals {
	return Totals{TasksDone: e.tasksDone.Load(), BytesDone: e.bytesDone.Load()}
}
