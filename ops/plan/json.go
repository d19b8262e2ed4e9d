package plan

import (
	"encoding/json"
	"net/url"
	"reflect"
)

// sameJSON compares two policy documents by meaning: IAM returns them
// URL-encoded and reformatted.
func sameJSON(a, b string) bool {
	if u, err := url.QueryUnescape(b); err == nil {
		b = u
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}
