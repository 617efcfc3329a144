package mr

// registered is the job the module's exports run.
var registered *engine

// Register makes job the job of this module. Call it once, from an init
// function of the job's package main; the module's exports run it. In a
// native build Register only records the job.
func Register(job Job) {
	registered = newEngine(job)
}
