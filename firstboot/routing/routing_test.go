package routing

import (
	"strings"
	"testing"
)

func TestValidateTable(t *testing.T) {
	tests := []struct {
		table   int
		wantErr string
	}{
		{0, "unspecified"},
		{-1, "negative"},
		{1, "below 1000"},
		{52, "below 1000"},
		{100, "cloud-init"},
		{253, "default, main and local"},
		{254, "default, main and local"},
		{255, "default, main and local"},
		{999, "cloud-init"},
		{1000, ""},
		{DefaultTable, ""},
		{9999, ""},
		{10000, "amazon-ec2-net-utils"},
		{10001, "amazon-ec2-net-utils"},
		{10101, "amazon-ec2-net-utils"},
		{1 << 31, "amazon-ec2-net-utils"},
	}
	for _, tt := range tests {
		checkErr(t, "table", tt.table, ValidateTable(tt.table), tt.wantErr)
	}
}

func TestValidatePriority(t *testing.T) {
	tests := []struct {
		priority int
		wantErr  string
	}{
		{0, "local rule"},
		{-5, "negative"},
		{100, "below 1000"},
		{512, "below 1000"},
		{1000, ""},
		{DefaultPriority, ""},
		{9999, ""},
		{10000, "amazon-ec2-net-utils"},
		{32765, "amazon-ec2-net-utils"},
		{32766, "main and default rules"},
		{32767, "main and default rules"},
	}
	for _, tt := range tests {
		checkErr(t, "priority", tt.priority, ValidatePriority(tt.priority), tt.wantErr)
	}
}

func checkErr(t *testing.T, what string, id int, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s %d: unexpected error %v", what, id, err)
	case want != "" && err == nil:
		t.Errorf("%s %d: no error, want one mentioning %q", what, id, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s %d: error %q does not mention %q", what, id, err, want)
	case err != nil && !strings.Contains(err.Error(), "choose 1000-9999"):
		t.Errorf("%s %d: error %q does not say what to choose", what, id, err)
	}
}
