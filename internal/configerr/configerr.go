// Package configerr helps config sections report every problem at once with
// its field path: a section's Validate returns errors.Join of its problems,
// and the parent prefixes each leaf with the section's name.
package configerr

// Leaves unwraps errors.Join trees into their leaf errors, in order.
func Leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Leaves(e)...)
		}
		return out
	}
	return []error{err}
}
