// Package api is the contract of tabreduce's HTTP API: the types its JSON
// bodies carry (jobs, workers, modules) and the one vocabulary of error
// codes that the HTTP API and the worker protocol share. It imports nothing
// of the server, so a program that only talks to a server (the API client)
// does not link the engine.
package api
