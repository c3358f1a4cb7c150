package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/blowfish"
)

// bcryptCost is the htpasswd entry's work factor (registry checks it on
// every authenticated request, so not more).
const bcryptCost = 10

// bcryptEncoding is bcrypt's own base64 alphabet, without padding.
var bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// htpasswdLine is the registry's htpasswd entry for user and password: a
// standard $2a$ bcrypt hash whose salt is derived from the password, so the
// same password always gives the same line. The program then declares the
// same Secret on every run (a random salt would replace the Secret, and
// restart the registry, on each one); the password itself is 32 random
// letters and digits that liftoff generates, where a salt adds nothing.
func htpasswdLine(user, password string) string {
	mac := hmac.New(sha256.New, []byte(password))
	mac.Write([]byte("liftoff registry htpasswd salt"))
	salt := mac.Sum(nil)[:16]
	return fmt.Sprintf("%s:$2a$%02d$%s%s\n", user, bcryptCost, bcryptEncoding.EncodeToString(salt), bcryptHash([]byte(password), salt, bcryptCost))
}

// bcryptHash is the bcrypt (EksBlowfish) hash of password with a 16-byte
// salt: the blowfish state expanded 2^cost times with the key and the salt,
// then "OrpheanBeholderScryDoubt" encrypted 64 times, 23 of its 24 bytes
// encoded (as every C implementation does).
func bcryptHash(password, salt []byte, cost int) string {
	key := append(append([]byte{}, password...), 0) // the C string's terminating NUL is part of the key
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil {
		panic(err) // only for an empty key, which the NUL rules out
	}
	for range 1 << cost {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
	}
	text := []byte("OrpheanBeholderScryDoubt")
	for i := 0; i < len(text); i += 8 {
		for range 64 {
			c.Encrypt(text[i:i+8], text[i:i+8])
		}
	}
	return bcryptEncoding.EncodeToString(text[:23])
}
