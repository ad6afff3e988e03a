package kpemu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
)

// ReasonUnwrap answers an unwrap whose ciphertext this key did not make, was changed, or was
// made with other additional authentication data (422). The code is this emulator's choice.
const ReasonUnwrap = "UNPROCESSABLE_CIPHERTEXT_ERR"

// actionJSON is the body of a wrap or unwrap request and answer (keyprotect-go-client's
// KeysActionRequest / KeyActionResponse).
type actionJSON struct {
	Plaintext  string       `json:"plaintext,omitempty"`
	AAD        []string     `json:"aad,omitempty"`
	Ciphertext string       `json:"ciphertext,omitempty"`
	KeyVersion *versionJSON `json:"keyVersion,omitempty"`
}

// Ciphertext layout (the emulator's own, opaque to clients), base64 encoded:
//
//	1 byte: length n of the version id | n bytes: version id | 12 bytes: nonce | AES-256-GCM seal
//
// sealed under the version's material with additional data binding the key id and the request's
// AAD, so a ciphertext opens only with the key, the version and the AAD it was made with.
const nonceSize = 12

func sealAAD(keyID string, aad []string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(keyID)))
	b = append(b, keyID...)
	for _, a := range aad {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

func gcmOf(material []byte) cipher.AEAD {
	block, err := aes.NewCipher(material)
	if err != nil {
		panic(err) // material is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// readAction decodes an action body; on false it has answered 400.
func readAction(w http.ResponseWriter, r *http.Request) (actionJSON, bool) {
	var req actionJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: the request body is not valid JSON", ReasonBadRequest, "Invalid body data was passed")
		return actionJSON{}, false
	}
	return req, true
}

// usable answers for a key that cannot wrap or unwrap (with the emulator locked) and reports
// whether it can: destroyed keys answer 410, keys in any state but active 409.
func usable(w http.ResponseWriter, k *key) bool {
	switch k.state {
	case StateActive:
		return true
	case StateDestroyed:
		deleted(w)
	default:
		writeError(w, http.StatusConflict, "Conflict: Key is not in a valid state. Please see `reasons` for more details.",
			ReasonInvalidState, "Key is not in a valid state: only an active key wraps and unwraps")
	}
	return false
}

// wrap seals the plaintext (or a new 32-byte key when there is none) under the key's newest
// version.
func (e *Emulator) wrap(w http.ResponseWriter, r *http.Request) {
	req, ok := readAction(w, r)
	if !ok {
		return
	}
	var generated bool
	plain, err := base64.StdEncoding.DecodeString(req.Plaintext)
	switch {
	case err != nil || len(plain) > MaxWrapPlaintext:
		writeError(w, http.StatusBadRequest, "Bad Request: plaintext must be base64, at most 7168 bytes", ReasonBadRequest, "Invalid field: plaintext")
		return
	case len(plain) == 0:
		plain, generated = make([]byte, 32), true
		_, _ = rand.Read(plain)
	}
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	if !usable(w, k) {
		e.mu.Unlock()
		return
	}
	v := k.current()
	e.mu.Unlock()

	out := []byte{byte(len(v.id))}
	out = append(out, v.id...)
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	out = gcmOf(v.material).Seal(out, nonce, plain, sealAAD(k.id, req.AAD))
	res := actionJSON{Ciphertext: base64.StdEncoding.EncodeToString(out), KeyVersion: &versionJSON{ID: v.id, CreationDate: v.created}}
	if generated {
		res.Plaintext = base64.StdEncoding.EncodeToString(plain)
	}
	writeJSON(w, http.StatusOK, res)
}

// unwrap opens a ciphertext made by wrap with the version it names.
func (e *Emulator) unwrap(w http.ResponseWriter, r *http.Request) {
	req, ok := readAction(w, r)
	if !ok {
		return
	}
	if req.Ciphertext == "" {
		writeError(w, http.StatusBadRequest, "Bad Request: ciphertext is required", ReasonBadRequest, "Invalid field: ciphertext")
		return
	}
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	if !usable(w, k) {
		e.mu.Unlock()
		return
	}
	versions := slices.Clone(k.versions)
	e.mu.Unlock()

	refuse := func() {
		writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity: The provided ciphertext is invalid or corrupted",
			ReasonUnwrap, "The ciphertext could not be unwrapped with this key and additional authentication data")
	}
	raw, err := base64.StdEncoding.DecodeString(req.Ciphertext)
	if err != nil || len(raw) < 1 {
		refuse()
		return
	}
	n := int(raw[0])
	if len(raw) < 1+n+nonceSize {
		refuse()
		return
	}
	id, nonce, sealed := string(raw[1:1+n]), raw[1+n:1+n+nonceSize], raw[1+n+nonceSize:]
	i := slices.IndexFunc(versions, func(v version) bool { return v.id == id })
	if i < 0 {
		refuse()
		return
	}
	plain, err := gcmOf(versions[i].material).Open(nil, nonce, sealed, sealAAD(k.id, req.AAD))
	if err != nil {
		refuse()
		return
	}
	v := versions[i]
	writeJSON(w, http.StatusOK, actionJSON{Plaintext: base64.StdEncoding.EncodeToString(plain), KeyVersion: &versionJSON{ID: v.id, CreationDate: v.created}})
}
