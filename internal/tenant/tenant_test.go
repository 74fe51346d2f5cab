package tenant

import "testing"

func TestAuthenticateHeader(t *testing.T) {
	r, err := NewRegistry([]Config{
		{ID: "acme", TokenSHA256: []string{HashToken("s3cret")}},
		{ID: "globex", TokenSHA256: []string{HashToken("other")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{
		"Bearer s3cret":     "acme",
		"bearer s3cret":     "acme", // the scheme is case-insensitive (RFC 7235)
		"  BEARER  s3cret ": "acme",
		"Bearer other":      "globex",
		"Bearer nope":       "",
		"Basic s3cret":      "",
		"s3cret":            "",
		"":                  "",
	} {
		got := ""
		if tn, ok := r.AuthenticateHeader(header); ok {
			got = tn.ID
		}
		if got != want {
			t.Errorf("%q: tenant %q, want %q", header, got, want)
		}
	}
	// What `printf %s s3cret | sha256sum` prints, as the README tells operators to compute it.
	if got := HashToken("s3cret"); got != "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0" {
		t.Fatalf("hash %s", got)
	}
}
