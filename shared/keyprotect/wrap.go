package keyprotect

import (
	"context"
	"encoding/base64"
	"fmt"

	kp "github.com/IBM/keyprotect-go-client"
)

// MaxWrapKey bounds the data key Wrap takes (Key Protect wraps keys of at most 7168 bytes).
const MaxWrapKey = 7168

// Wrap wraps key, a data encryption key, with the root key ref (an id or a CRN) for envelope
// encryption, binding aad (Key Protect's additional authentication data: Unwrap needs the same
// list, in the same order). It returns the wrapped key as Key Protect gives it (base64 text,
// opaque) and the id of the key version that wrapped it, which Unwrap needs to stay available.
// Only an active key wraps: a suspended, deactivated or pre-activation key fails with a
// permanent 409 error, a destroyed one with a NotFound error. Safe to retry (each attempt wraps
// anew, with nothing stored). key is sent to Key Protect only, never logged.
func (c *Client) Wrap(ctx context.Context, ref string, key []byte, aad []string) (wrapped []byte, version string, err error) {
	const op = "wrap key"
	id, err := c.keyID(op, ref)
	if err != nil {
		return nil, "", err
	}
	if len(key) == 0 || len(key) > MaxWrapKey {
		return nil, "", &Error{Op: op, KeyID: id, Class: Invalid, Err: fmt.Errorf("a data key has 1 to %d bytes, not %d", MaxWrapKey, len(key))}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	plain := []byte(base64.StdEncoding.EncodeToString(key))
	var res *kp.KeyActionResponse
	err = c.call(ctx, op, id, func(ctx context.Context) error {
		var err error
		res, err = c.kp.WrapV2(ctx, id, plain, aadOf(aad))
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if res == nil || res.CipherText == "" || res.KeyVersion == nil || res.KeyVersion.ID == "" {
		return nil, "", &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("the answer has no ciphertext or no key version")}
	}
	return []byte(res.CipherText), res.KeyVersion.ID, nil
}

// Unwrap returns the data key that Wrap wrapped with the root key ref and aad. Only an active key
// unwraps: a suspended, deactivated or pre-activation key fails with a permanent 409 error, a
// destroyed one with a NotFound error. A wrapped key this key did not make, that was changed, or
// given with other aad fails with a permanent error (422). Safe to retry. The key returned is a
// secret: callers must not log it.
func (c *Client) Unwrap(ctx context.Context, ref string, wrapped []byte, aad []string) ([]byte, error) {
	const op = "unwrap key"
	id, err := c.keyID(op, ref)
	if err != nil {
		return nil, err
	}
	if len(wrapped) == 0 {
		return nil, &Error{Op: op, KeyID: id, Class: Invalid, Err: fmt.Errorf("no wrapped key")}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var plain []byte
	err = c.call(ctx, op, id, func(ctx context.Context) error {
		var err error
		plain, _, err = c.kp.UnwrapV2(ctx, id, wrapped, aadOf(aad))
		return err
	})
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(string(plain))
	if err != nil || len(key) == 0 {
		return nil, &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("the answer's plaintext is not a base64 key")}
	}
	return key, nil
}

func aadOf(aad []string) *[]string {
	if len(aad) == 0 {
		return nil
	}
	return &aad
}
