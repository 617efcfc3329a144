// Package restmqcompat holds the compatibility suite: tests that make each
// call exactly as RestMQ's own clients, examples and tests make it (RestMQ's
// examples/, tests/ and contrib/, restmq_websockets, and gleicon's PubSub
// servers pubsub_ws, nodester_pubsub and pubsub_comet) — method, path,
// content type and body — against a real server on a loopback port, and
// check the answers byte for byte where those clients depend on bytes. It
// has no code of its own: every file is a test.
package restmqcompat
