package worker

import "github.com/tabreduce/tabreduce/wasm/workerproto"

// ResultHash is workerproto.ResultHash, the protocol's canonical result
// hash.
func ResultHash(res workerproto.Result) [32]byte { return workerproto.ResultHash(res) }
