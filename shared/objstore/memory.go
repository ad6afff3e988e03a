package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Store for unit tests, with the conditional semantics of S3: If-Match
// on a missing key answers ErrNotFound, If-None-Match on an existing key ErrPrecondition, and
// each Put is atomic. ETags are the quoted MD5 of the body, as S3 gives for single-part puts.
// The zero value is not usable; call NewMemory.
type Memory struct {
	mu      sync.Mutex
	objects map[string]memObject
	now     func() time.Time
}

type memObject struct {
	body []byte
	etag string
	mod  time.Time
}

var (
	_ Store        = (*Memory)(nil)
	_ BatchDeleter = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]memObject), now: func() time.Time { return time.Now().UTC() }}
}

// Get returns a copy of the body of key and its ETag, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := m.check(ctx, key); err != nil {
		return nil, "", fmt.Errorf("objstore: get %s: %w", key, err)
	}
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return nil, "", fmt.Errorf("objstore: get %s: %w", key, ErrNotFound)
	}
	return bytes.Clone(o.body), o.etag, nil
}

// Put stores a copy of body at key if c holds. See Store.Put.
func (m *Memory) Put(ctx context.Context, key string, body []byte, c Cond) (string, error) {
	if err := m.check(ctx, key); err != nil {
		return "", fmt.Errorf("objstore: put %s: %w", key, err)
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	sum := md5.Sum(body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.objects[key]
	switch {
	case c.IfNoneMatch && exists:
		return "", fmt.Errorf("objstore: put %s if absent: %w", key, ErrPrecondition)
	case c.IfMatch != "" && !exists:
		return "", fmt.Errorf("objstore: put %s if-match %s: %w", key, c.IfMatch, ErrNotFound)
	case c.IfMatch != "" && old.etag != c.IfMatch:
		return "", fmt.Errorf("objstore: put %s if-match %s: %w", key, c.IfMatch, ErrPrecondition)
	}
	m.objects[key] = memObject{body: bytes.Clone(body), etag: etag, mod: m.now()}
	return etag, nil
}

// Delete removes key; a missing key is not an error.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx, key); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", key, err)
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// DeleteMany removes keys at once; missing keys are not errors.
func (m *Memory) DeleteMany(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := m.check(ctx, k); err != nil {
			return fmt.Errorf("objstore: delete %s: %w", k, err)
		}
	}
	m.mu.Lock()
	for _, k := range keys {
		delete(m.objects, k)
	}
	m.mu.Unlock()
	return nil
}

// List returns the objects under prefix, sorted by key.
func (m *Memory) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: list %s: %w", prefix, err)
	}
	m.mu.Lock()
	out := []Info{}
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Info{Key: k, Size: int64(len(o.body)), ETag: o.etag, LastModified: o.mod})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *Memory) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ValidateKey(key)
}
