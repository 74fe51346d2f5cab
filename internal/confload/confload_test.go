package confload

import (
	"strings"
	"testing"
)

type sample struct {
	Name  string            `yaml:"name"`
	Port  int               `yaml:"port"`
	On    bool              `yaml:"on"`
	Token string            `yaml:"token"`
	List  []string          `yaml:"list"`
	Map   map[string]string `yaml:"map"`
	Inner struct {
		DSN string `yaml:"dsn"`
	} `yaml:"inner"`
}

func env(kv ...string) LookupFunc {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestValueWithYAMLSyntaxStaysOneValue(t *testing.T) {
	// Each of these would have changed the document's structure when the
	// raw bytes were expanded before parsing.
	for _, secret := range []string{"abc # not a comment", "key: value", "line1\nport: 1", "- item", "{a: b}", "'quoted", "&anchor"} {
		var s sample
		err := Decode([]byte("name: x\ntoken: ${TOKEN}\nport: 7\n"), &s, env("TOKEN", secret))
		if err != nil {
			t.Fatalf("%q: %v", secret, err)
		}
		if s.Token != secret || s.Port != 7 || s.Name != "x" {
			t.Fatalf("%q: got %+v", secret, s)
		}
	}
}

func TestCommentReferencesAreNotRequired(t *testing.T) {
	var s sample
	if err := Decode([]byte("# set ${UNSET_IN_COMMENT} to override\nname: a # ${ALSO_UNSET}\n"), &s, env()); err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" {
		t.Fatalf("name %q", s.Name)
	}
}

func TestWholeReferenceIsTypedFromItsValue(t *testing.T) {
	var s sample
	if err := Decode([]byte("port: ${PORT}\non: ${ON}\nname: ${NAME}\n"), &s, env("PORT", "8080", "ON", "true", "NAME", "123")); err != nil {
		t.Fatal(err)
	}
	if s.Port != 8080 || !s.On || s.Name != "123" {
		t.Fatalf("got %+v", s)
	}
}

func TestInterpolationDefaultsAndNesting(t *testing.T) {
	var s sample
	raw := "inner:\n  dsn: \"tcp://${HOST:-localhost}:${P}/db\"\nlist: [\"${A}\", b]\nmap:\n  k: ${B:-dflt}\n"
	if err := Decode([]byte(raw), &s, env("P", "9000", "A", "x y")); err != nil {
		t.Fatal(err)
	}
	if s.Inner.DSN != "tcp://localhost:9000/db" || s.List[0] != "x y" || s.List[1] != "b" || s.Map["k"] != "dflt" {
		t.Fatalf("got %+v", s)
	}
}

func TestEveryMissingVariableReported(t *testing.T) {
	var s sample
	err := Decode([]byte("name: ${ZED}\ntoken: ${ALPHA}\nport: ${ZED}\n"), &s, env())
	if err == nil || err.Error() != "env not set: ALPHA, ZED" {
		t.Fatalf("err %v", err)
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	var s sample
	err := Decode([]byte("name: a\nnmae: b\n"), &s, env())
	if err == nil || !strings.Contains(err.Error(), "nmae") {
		t.Fatalf("err %v", err)
	}
}

func TestWrongTypeFromEnvIsAnError(t *testing.T) {
	var s sample
	if err := Decode([]byte("port: ${PORT}\n"), &s, env("PORT", "eighty")); err == nil {
		t.Fatal("want an error for a non-integer port")
	}
}

func TestEmptyDocument(t *testing.T) {
	s := sample{Name: "keep"}
	if err := Decode([]byte("# only a comment\n"), &s, env()); err != nil || s.Name != "keep" {
		t.Fatalf("%v %+v", err, s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: ${A}\nport: ${P:-1}\n"), "x: y # z")
	f.Add([]byte("list: [${A}]\n"), "\n")
	f.Fuzz(func(t *testing.T, raw []byte, val string) {
		var s sample
		_ = Decode(raw, &s, env("A", val, "P", val))
		// Whatever a variable holds, it is one value: when the document
		// decodes, the token is exactly what the variable held.
		var t2 sample
		if err := Decode([]byte("token: ${A}\n"), &t2, env("A", val)); err == nil && t2.Token != val {
			// yaml normalises some line breaks (\r\n) and rejects control
			// characters; those are errors or normalisations, not new keys.
			if strings.ContainsAny(val, "\r\x85\u2028\u2029") {
				return
			}
			t.Fatalf("token %q from %q", t2.Token, val)
		}
	})
}
