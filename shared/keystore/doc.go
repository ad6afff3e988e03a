// Package keystore seals and opens keyguard's copies of a Db2 native-encryption keystore.
//
// A local keystore (a PKCS#12 file and its stash file, which holds the keystore password) opens
// every natively encrypted image of its database, so its copy in COS must not be readable with
// bucket access alone. The backup runner seals the archive of both files (Seal) with envelope
// encryption: a fresh 256-bit data key encrypts it once with AES-256-GCM, and Key Protect wraps
// the data key with a root key (the fleet policy's keystore_key_crn). Only the wrapped data key
// is stored, in the object's header, with the root key's CRN and the key version Key Protect
// reports for the wrap. The restore job reads the header (ParseHeader) to check that key
// version, then asks Key Protect to unwrap (Open). Neither the data key nor the archive is ever
// logged or written anywhere else.
//
// Stored format (a sealed keystore, at most MaxSealed bytes):
//
//	"KGKS"                 4 bytes, magic
//	0x01                   1 byte, format version
//	n                      4 bytes, big-endian length of the header (1 to MaxHeader)
//	header                 n bytes of JSON (Header's fields, strict: unknown fields are errors)
//	ciphertext             AES-256-GCM seal of the archive (Header.Size bytes + 16-byte tag)
//
// The header is authenticated with the archive: it is the GCM additional data, so changing any
// byte of it (the key CRN, the key version, the binding) makes Open fail. The header's "aad" is
// the additional authentication data given to Key Protect with the data key, ["keyguard keystore
// v1", database, image timestamp]: the wrapped key unwraps only for the image it was made for,
// and Open checks the binding against the catalog entry before it asks Key Protect. The header
// also carries a fingerprint, the SHA-256 of the keystore file (not of the stash), so that the
// runner can tell a changed keystore (a master key rotation) without unwrapping: the PKCS#12
// file is itself encrypted with the stash password, so its digest discloses nothing of use.
//
// Interfaces are the consumer's: Wrapper and Unwrapper are what Seal and Open need, and
// *keyprotect.Client implements both.
package keystore
