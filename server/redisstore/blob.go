package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/blob"
)

// Blobs is a blob.Store in Redis, shared by every server on it: an object
// is a version of chunks, each a string key of its own (so a cluster
// spreads them over its nodes), and a small state hash naming the version.
// A Put writes its chunks under a new version with an expiry, makes them
// permanent, then switches the state to it in one command: a reader sees
// the old object or the new one, never a mix, and chunks of a Put that
// died expire by themselves. Replaced versions expire a minute later, so
// a reader in the middle of the old one finishes it.
//
//	{P}:{b<key>}:m          HASH   ver, size, n (chunks)
//	{P}:bc:<ver>:<i>        STRING chunk i of a version
//	{P}:{reg}:blobs         ZSET   every key, for DeletePrefix (lex)
type Blobs struct {
	s *Store
}

var _ blob.Store = (*Blobs)(nil)

// Blob layout constants.
const (
	blobChunk      = 1 << 20         // bytes per chunk
	blobUploadTTL  = time.Hour       // life of the chunks of an unfinished Put
	blobReplaceTTL = time.Minute     // life of a replaced version
	blobInFlight   = 4               // chunks a Put writes at once
	blobMaxSize    = int64(64) << 30 // the largest object
)

// Blobs returns the blob store that shares this store's Redis and prefix.
func (s *Store) Blobs() *Blobs { return &Blobs{s: s} }

func (b *Blobs) metaKey(key string) string {
	return b.s.keys.prefix + ":{b" + escapeTag(key) + "}:m"
}

func (b *Blobs) chunkKey(ver string, i int64) string {
	return b.s.keys.prefix + ":bc:" + ver + ":" + strconv.FormatInt(i, 10)
}

func (b *Blobs) index() string { return b.s.keys.reg("blobs") }

// Put stores r under key.
func (b *Blobs) Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error) {
	if err := blob.CheckKey(key); err != nil {
		return 0, err
	}
	if err := b.s.check(ctx); err != nil {
		return 0, err
	}
	limit = min(limit, blobMaxSize)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	ver := hex.EncodeToString(rnd[:])
	size, n, err := b.writeChunks(ctx, ver, r, limit)
	if err != nil {
		b.dropChunks(ver, n)
		return 0, err
	}
	c := b.s.client
	if err := c.ZAdd(ctx, b.index(), redis.Z{Member: key}).Err(); err != nil {
		return 0, b.s.mapErr(err)
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Persist(ctx, b.chunkKey(ver, i))
		}
		return nil
	}); err != nil {
		return 0, b.s.mapErr(err)
	}
	old, err := b.s.run(ctx, scriptBlobSwitch, nowArgs{}, []string{b.metaKey(key)}, ver, size, n)
	if err != nil {
		return 0, err
	}
	if o, ok := old.([]any); ok && len(o) == 2 {
		ov, _ := o[0].(string)
		on, _ := asCount(o[1], "blob chunks")
		b.expireChunks(ctx, ov, on)
	}
	return size, nil
}

// writeChunks reads r into chunks of version ver, at most limit bytes, a
// few chunks in flight at once. It returns the size and the chunks written.
func (b *Blobs) writeChunks(ctx context.Context, ver string, r io.Reader, limit int64) (int64, int64, error) {
	var size, n int64
	buf := make([]byte, blobChunk)
	p := b.s.client.Pipeline()
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		pending = 0
		_, err := p.Exec(ctx)
		return b.s.mapErr(err)
	}
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if size+int64(k) > limit {
				return size, n, fmt.Errorf("%w: more than %d bytes", blob.ErrTooLarge, limit)
			}
			p.Set(ctx, b.chunkKey(ver, n), buf[:k:k], blobUploadTTL)
			buf = make([]byte, blobChunk) // the pipeline holds the last one
			size += int64(k)
			n++
			if pending++; pending == blobInFlight {
				if err := flush(); err != nil {
					return size, n, err
				}
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return size, n, flush()
		}
		if err != nil {
			return size, n, err
		}
		if err := ctx.Err(); err != nil {
			return size, n, err
		}
	}
}

// dropChunks deletes the chunks of a Put that failed (they would expire
// anyway).
func (b *Blobs) dropChunks(ver string, n int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = b.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Del(ctx, b.chunkKey(ver, i))
		}
		return nil
	})
}

// expireChunks gives a replaced version's chunks blobReplaceTTL to live.
func (b *Blobs) expireChunks(ctx context.Context, ver string, n int64) {
	if ver == "" {
		return
	}
	_, err := b.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Expire(ctx, b.chunkKey(ver, i), blobReplaceTTL)
		}
		return nil
	})
	if err != nil {
		b.s.log.Warn("blob: expire a replaced version", "err", err)
	}
}

// state reads an object's version, size and chunk count.
func (b *Blobs) state(ctx context.Context, key string) (ver string, size, n int64, err error) {
	if err := blob.CheckKey(key); err != nil {
		return "", 0, 0, err
	}
	if err := b.s.check(ctx); err != nil {
		return "", 0, 0, err
	}
	m, err := b.s.client.HGetAll(ctx, b.metaKey(key)).Result()
	if err != nil {
		return "", 0, 0, b.s.mapErr(err)
	}
	if len(m) == 0 {
		return "", 0, 0, fmt.Errorf("%w: %s", blob.ErrNotFound, key)
	}
	size, err1 := asCount(m["size"], "blob size")
	n, err2 := asCount(m["n"], "blob chunks")
	ver = m["ver"]
	if err1 != nil || err2 != nil || len(ver) != 16 || n != (size+blobChunk-1)/blobChunk {
		return "", 0, 0, corrupt("blob "+key, m)
	}
	return ver, size, n, nil
}

// Size is the object's length.
func (b *Blobs) Size(ctx context.Context, key string) (int64, error) {
	_, size, _, err := b.state(ctx, key)
	return size, err
}

// Open reads a range of the object, a chunk at a time.
func (b *Blobs) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	ver, size, chunks, err := b.state(ctx, key)
	if err != nil {
		return nil, err
	}
	if n, err = blob.CheckRange(size, off, n); err != nil {
		return nil, err
	}
	return &blobReader{b: b, ctx: ctx, key: key, ver: ver, size: size, chunks: chunks, off: off, end: off + n}, nil
}

// blobReader streams a range of one version.
type blobReader struct {
	b        *Blobs
	ctx      context.Context
	key, ver string
	size     int64
	chunks   int64
	off, end int64
	buf      []byte
}

func (r *blobReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.end {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	k := copy(p, r.buf)
	r.buf = r.buf[k:]
	return k, nil
}

// fill reads the rest of the range that lies in the chunk at r.off.
func (r *blobReader) fill() error {
	i := r.off / blobChunk
	from := r.off - i*blobChunk
	to := min(r.end-i*blobChunk, blobChunk) // exclusive, within the chunk
	v, err := r.b.s.client.GetRange(r.ctx, r.b.chunkKey(r.ver, i), from, to-1).Result()
	if err != nil {
		return r.b.s.mapErr(err)
	}
	if int64(len(v)) != to-from {
		return fmt.Errorf("%w: %w: blob %s chunk %d has %d bytes where %d were wanted (replaced and expired?)", blob.ErrCorrupt, errCorrupt, r.key, i, len(v), to-from)
	}
	r.buf = []byte(v)
	r.off += to - from
	return nil
}

func (r *blobReader) Close() error { return nil }

// DeletePrefix deletes every object whose key starts with prefix.
func (b *Blobs) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := b.s.check(ctx); err != nil {
		return 0, err
	}
	lo, hi := lexRange(prefix)
	keys, err := b.s.client.ZRangeByLex(ctx, b.index(), &redis.ZRangeBy{Min: lo, Max: hi}).Result()
	if err != nil {
		return 0, b.s.mapErr(err)
	}
	n := 0
	for _, key := range keys {
		v, err := b.s.run(ctx, scriptBlobDelete, nowArgs{}, []string{b.metaKey(key)})
		if err != nil {
			return n, err
		}
		if o, ok := v.([]any); ok && len(o) == 2 {
			ver, _ := o[0].(string)
			chunks, _ := asCount(o[1], "blob chunks")
			b.dropChunks(ver, chunks)
			n++
		}
		if err := b.s.client.ZRem(ctx, b.index(), key).Err(); err != nil {
			return n, b.s.mapErr(err)
		}
		// A Put of the key that hinted before the ZREM and finished after
		// the delete keeps its entry.
		if e, err := b.s.client.Exists(ctx, b.metaKey(key)).Result(); err == nil && e == 1 {
			b.s.client.ZAdd(ctx, b.index(), redis.Z{Member: key})
		}
	}
	return n, nil
}
