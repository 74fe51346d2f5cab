package attribution

import "testing"

// The user directory is a CSV or YAML export from an HR or identity system.
func FuzzDirectoryCSV(f *testing.F) {
	f.Add([]byte("user_id,team,cost_centre\nu1,legal,CC-1\nu2,support,\n"))
	f.Add([]byte("user_id,team\nu1,legal\nu1,other\n\"bad\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseDirectoryCSV("fuzz.csv", b)
	})
}

func FuzzDirectoryYAML(f *testing.F) {
	f.Add([]byte("users:\n  u1: {team: legal}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseDirectoryYAML("fuzz.yaml", b)
	})
}
