package zkensemble

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/zkaas/zkaas/firstboot/systemd"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

// TestLoadService: the unit and drop-ins are found and applied as systemd
// does, and ExecStart comes out as the argv systemd would exec.
func TestLoadService(t *testing.T) {
	baked, err := systemd.Unit(systemd.ZooKeeper)
	if err != nil {
		t.Fatal(err)
	}
	distro, err := os.ReadFile("../../roles/zookeeper/files/distro.conf")
	if err != nil {
		t.Fatal(err)
	}
	javaEnv := file(`SERVER_JVMFLAGS="-Xms256m -Xmx256m -XX:+ExitOnOutOfMemoryError"` + "\n")
	const unitDir = "etc/systemd/system/"
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		unit  string
		want  service
		error string
	}{
		{
			name: "baked unit with the distro drop-in",
			fsys: fstest.MapFS{
				unitDir + "zookeeper.service":                        {Data: baked},
				unitDir + "zookeeper.service.d/20-zkaas-distro.conf": {Data: distro},
				"etc/zkaas/zookeeper/java.env":                       javaEnv,
			},
			unit: "zookeeper.service",
			want: service{
				Argv: []string{"/usr/bin/java", "-Xms256m", "-Xmx256m", "-XX:+ExitOnOutOfMemoryError",
					"-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
					"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zkaas/zookeeper/zoo.cfg"},
				User: "zookeeper", Group: "zookeeper",
				Env:     []string{"SERVER_JVMFLAGS=-Xms256m -Xmx256m -XX:+ExitOnOutOfMemoryError"},
				Sources: []string{"/etc/systemd/system/zookeeper.service", "/etc/systemd/system/zookeeper.service.d/20-zkaas-distro.conf"},
			},
		},
		{
			name: "baked unit alone: the release tarball",
			fsys: fstest.MapFS{unitDir + "zookeeper.service": {Data: baked}, "etc/zkaas/zookeeper/java.env": javaEnv},
			unit: "zookeeper.service",
			want: service{
				Argv: []string{"/usr/bin/java", "-Xms256m", "-Xmx256m", "-XX:+ExitOnOutOfMemoryError",
					"-cp", "/opt/zookeeper/lib/*:/opt/zookeeper/conf",
					"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zkaas/zookeeper/zoo.cfg"},
				User: "zookeeper", Group: "zookeeper",
				Env:     []string{"SERVER_JVMFLAGS=-Xms256m -Xmx256m -XX:+ExitOnOutOfMemoryError"},
				Sources: []string{"/etc/systemd/system/zookeeper.service"},
			},
		},
		{
			name: "search path: /etc unit wins, drop-ins merged by name and sorted",
			fsys: fstest.MapFS{
				"usr/lib/systemd/system/x.service":             file("[Service]\nExecStart=/bin/vendor\n"),
				unitDir + "x.service":                          file("[Service]\nExecStart=/bin/admin $A\n"),
				"usr/lib/systemd/system/x.service.d/10-a.conf": file("[Service]\nEnvironment=A=vendor\n"),
				unitDir + "x.service.d/10-a.conf":              file("[Service]\nEnvironment=A=admin\n"),
				"lib/systemd/system/x.service.d/05-b.conf":     file("[Service]\nEnvironment=B=b\n"),
				unitDir + "x.service.d/ignored.txt":            file("[Service]\nExecStart=/bin/no\n"),
			},
			unit: "x.service",
			want: service{
				Argv: []string{"/bin/admin", "admin"},
				Env:  []string{"B=b", "A=admin"},
				Sources: []string{"/etc/systemd/system/x.service", "/lib/systemd/system/x.service.d/05-b.conf",
					"/etc/systemd/system/x.service.d/10-a.conf"},
			},
		},
		{
			name: "expansion: $VAR splits, ${VAR} is one word, unset vanishes, $$ and %% are literal",
			fsys: fstest.MapFS{unitDir + "x.service": file(`[Unit]
ExecStart=/bin/not-a-service-setting
[Service]
Environment="X=a  b" Y=y
ExecStart=-/bin/p $X ${X} pre${Y}post $UNSET ${UNSET} $$HOME 100%% "quoted arg" \
  'single $X' $Y/z
`)},
			unit: "x.service",
			want: service{
				Argv:    []string{"/bin/p", "a", "b", "a  b", "preypost", "", "$HOME", "100%", "quoted arg", "single $X", "$Y/z"},
				Env:     []string{"X=a  b", "Y=y"},
				Sources: []string{"/etc/systemd/system/x.service"},
			},
		},
		{
			name: "environment files override Environment=, a missing optional one is skipped, : turns expansion off",
			fsys: fstest.MapFS{
				unitDir + "x.service": file("[Service]\nEnvironment=A=unit B=unit\nEnvironmentFile=-/etc/none\nEnvironmentFile=/etc/env\nExecStart=:/bin/p $A\n"),
				"etc/env":             file("# comment\n; comment\nA = 'single $q'\nC=\"d\\\"q\\n\" tail\\ x\n"),
			},
			unit: "x.service",
			want: service{
				Argv:    []string{"/bin/p", "$A"},
				Env:     []string{"A=single $q", "B=unit", `C=d"q\n tail x`},
				Sources: []string{"/etc/systemd/system/x.service"},
			},
		},
		{
			name: "an empty assignment resets",
			fsys: fstest.MapFS{
				unitDir + "x.service":              file("[Service]\nEnvironment=A=1\nEnvironmentFile=/etc/missing\nExecStart=/bin/a\n"),
				unitDir + "x.service.d/reset.conf": file("[Service]\nEnvironment=\nEnvironmentFile=\nExecStart=\nExecStart=/bin/b\n"),
			},
			unit: "x.service",
			want: service{Argv: []string{"/bin/b"}, Sources: []string{"/etc/systemd/system/x.service", "/etc/systemd/system/x.service.d/reset.conf"}},
		},
		{name: "missing", fsys: fstest.MapFS{}, unit: "x.service", error: "unit x.service not found in /etc/systemd/system, "},
		{
			name:  "masked",
			fsys:  fstest.MapFS{unitDir + "x.service": {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}},
			unit:  "x.service",
			error: "unit x.service is masked (/etc/systemd/system/x.service)",
		},
		{
			name:  "two commands",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n")},
			unit:  "x.service",
			error: "2 ExecStart= after drop-ins",
		},
		{
			name:  "no command",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nUser=u\n")},
			unit:  "x.service",
			error: "0 ExecStart= after drop-ins",
		},
		{
			name:  "missing environment file",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nEnvironmentFile=/etc/zkaas/zookeeper/java.env\nExecStart=/bin/a\n")},
			unit:  "x.service",
			error: "EnvironmentFile=/etc/zkaas/zookeeper/java.env: open etc/zkaas/zookeeper/java.env: file does not exist",
		},
		{
			name:  "privileged prefix",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nExecStart=+/bin/a\n")},
			unit:  "x.service",
			error: `prefix "+" is not supported`,
		},
		{
			name:  "unit specifier",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nExecStart=/bin/a %n\n")},
			unit:  "x.service",
			error: `specifier "%n" is not supported`,
		},
		{
			name:  "forking service",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nType=forking\nExecStart=/bin/a\n")},
			unit:  "x.service",
			error: "Type=forking: only simple and exec services are supported",
		},
		{
			name:  "unterminated quote",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nExecStart=/bin/a \"b\n")},
			unit:  "x.service",
			error: `unterminated " quote`,
		},
		{
			name:  "not a setting",
			fsys:  fstest.MapFS{unitDir + "x.service": file("[Service]\nExecStart\n")},
			unit:  "x.service",
			error: `/etc/systemd/system/x.service: line 2: "ExecStart" is not Key=value`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadService(tt.fsys, tt.unit)
			if tt.error != "" {
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Fatalf("error %v, want one saying %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Argv, tt.want.Argv) {
				t.Errorf("argv\n got %q\nwant %q", got.Argv, tt.want.Argv)
			}
			if !slices.Equal(got.Env, tt.want.Env) {
				t.Errorf("env\n got %q\nwant %q", got.Env, tt.want.Env)
			}
			if !slices.Equal(got.Sources, tt.want.Sources) {
				t.Errorf("sources\n got %q\nwant %q", got.Sources, tt.want.Sources)
			}
			if got.User != tt.want.User || got.Group != tt.want.Group {
				t.Errorf("user %q group %q, want %q %q", got.User, got.Group, tt.want.User, tt.want.Group)
			}
		})
	}
}

// TestLookupUser: users and groups come from the machine's own databases,
// by name or id.
func TestLookupUser(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/passwd": file("root:x:0:0:root:/root:/bin/bash\nzookeeper:x:997:996::/var/lib/zookeeper:/usr/sbin/nologin\n"),
		"etc/group":  file("root:x:0:\nzookeeper:x:996:\nadm:x:4:zookeeper\n"),
	}
	tests := []struct {
		user string
		want account
		err  string
	}{
		{user: "zookeeper", want: account{"zookeeper", "997", "996", "/var/lib/zookeeper", "/usr/sbin/nologin"}},
		{user: "997", want: account{"zookeeper", "997", "996", "/var/lib/zookeeper", "/usr/sbin/nologin"}},
		{user: "nobody", err: "not in /etc/passwd"},
	}
	for _, tt := range tests {
		got, err := lookupUser(fsys, tt.user)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("lookupUser(%s): %v, want %q", tt.user, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("lookupUser(%s) = %+v, %v; want %+v", tt.user, got, err, tt.want)
		}
	}
	for group, want := range map[string]string{"adm": "4", "996": "996", "zookeeper": "996"} {
		if got, err := lookupGroup(fsys, group); err != nil || got != want {
			t.Errorf("lookupGroup(%s) = %q, %v; want %s", group, got, err, want)
		}
	}
	if _, err := lookupGroup(fsys, "wheel"); err == nil {
		t.Error("lookupGroup(wheel) found one")
	}
}
