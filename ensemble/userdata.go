package ensemble

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ContentType marks the ensemble config when it is one part of a MIME
// multipart user data document, next to cloud-init's own parts.
// cloud-init skips a part whose type it has no handler for (it logs
// "Unhandled unknown content-type"), so the two share one user data:
// https://cloudinit.readthedocs.io/en/latest/explanation/format.html#mime-multi-part-archive
const ContentType = "text/x-zkaas-ensemble"

// UserDataName is how messages name a config that came from user data.
const UserDataName = "user data"

// cloudInitMarkers start the plain (non-MIME) user data formats cloud-init
// handles itself; such user data is cloud-init's, not an ensemble config
// (https://cloudinit.readthedocs.io/en/latest/explanation/format.html).
var cloudInitMarkers = []string{
	"#cloud-config", "#!", "#include", "#cloud-boothook", "#part-handler",
	"## template:", "#upstart-job", "#cloud-config-archive", "#cloud-config-jsonp",
}

// FromUserData finds the ensemble config in an instance's user data: the
// one MIME part of type ContentType, or the whole document when it is plain
// and not in one of cloud-init's formats. ok is false when the user data
// carries no ensemble config (empty, or only cloud-init's), so the caller
// falls back to the baked file. gzip-compressed user data, which cloud-init
// also accepts, is decompressed first. Two zkaas parts are an error: which
// one wins would be a guess.
func FromUserData(data []byte) (doc []byte, ok bool, err error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, false, fmt.Errorf("gzip user data: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, MaxSize+1))
		if err != nil {
			return nil, false, fmt.Errorf("gzip user data: %w", err)
		}
		if len(data) > MaxSize {
			return nil, false, fmt.Errorf("user data decompresses to more than %d bytes", MaxSize)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false, nil
	}
	if isMIME(data) {
		msg, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			return nil, false, fmt.Errorf("MIME user data: %w", err)
		}
		var found [][]byte
		if err := zkaasParts(msg.Header, msg.Body, 0, &found); err != nil {
			return nil, false, fmt.Errorf("MIME user data: %w", err)
		}
		switch len(found) {
		case 0:
			return nil, false, nil
		case 1:
			return found[0], true, nil
		}
		return nil, false, fmt.Errorf("MIME user data has %d parts of type %s: want one", len(found), ContentType)
	}
	first, _, _ := bytes.Cut(bytes.TrimLeft(data, " \t\r\n"), []byte("\n"))
	for _, m := range cloudInitMarkers {
		if bytes.HasPrefix(bytes.ToLower(first), []byte(m)) {
			return nil, false, nil
		}
	}
	return data, true, nil
}

// isMIME: cloud-init takes user data for MIME when it starts with a
// Content-Type header; MIME-Version first is what Python's email module
// and `cloud-init devel make-mime` write.
func isMIME(data []byte) bool {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	l := strings.ToLower(string(line))
	return strings.HasPrefix(l, "content-type:") || strings.HasPrefix(l, "mime-version:")
}

// header is what both mail.Header and a part's textproto.MIMEHeader offer.
type header interface{ Get(string) string }

// zkaasParts collects the bodies of the parts of type ContentType, walking
// nested multiparts (bounded: user data is at most 16 KiB on EC2, but a
// hostile nesting must not recurse without end).
func zkaasParts(h header, body io.Reader, depth int, found *[][]byte) error {
	if depth > 8 {
		return errors.New("multipart nested more than 8 deep")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(media, "multipart/") {
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", media)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := zkaasParts(p.Header, p, depth+1, found); err != nil {
				return err
			}
		}
	}
	if media != ContentType {
		return nil
	}
	var r io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "", "7bit", "8bit", "binary":
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{bufio.NewReader(body)})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	default:
		return fmt.Errorf("part %s: unknown Content-Transfer-Encoding %q", ContentType, enc)
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return fmt.Errorf("part %s: %w", ContentType, err)
	}
	if len(b) > MaxSize {
		return fmt.Errorf("part %s is larger than %d bytes", ContentType, MaxSize)
	}
	*found = append(*found, b)
	return nil
}

// newlineStripper drops whitespace from a base64 body: encoding/base64
// skips the \r and \n of MIME's line breaks itself, but not the spaces or
// tabs some tools leave at line ends.
type newlineStripper struct{ r *bufio.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		c, err := n.r.ReadByte()
		if err != nil {
			if i > 0 {
				return i, nil
			}
			return 0, err
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		p[i] = c
		i++
	}
	return i, nil
}

// Source says where a config came from, for the run report.
type Source struct {
	// Name is UserDataName or the baked file's path.
	Name string
	// PinnedBy is UserDataName when user data only pinned the node on top
	// of the baked file at Name (see Resolve); "" otherwise.
	PinnedBy string
}

func (s Source) String() string {
	if s.PinnedBy != "" {
		return s.Name + " (node pinned by " + s.PinnedBy + ")"
	}
	return s.Name
}

// Resolve picks the config of a boot: the ensemble config in the
// instance's user data when it carries one, otherwise the baked file at
// path. User data that sets only `node` is a pin over the baked file (one
// launch template per node, one image for all). Everything is validated
// before the caller does anything; errors name the source and the line.
func Resolve(userData []byte, path string, opt Options) (Config, Source, []FieldError, error) {
	doc, ok, err := FromUserData(userData)
	if err != nil {
		return Config{}, Source{}, nil, fmt.Errorf("%s: %w", UserDataName, err)
	}
	if !ok {
		cfg, warns, err := LoadWith(path, opt)
		return cfg, Source{Name: path}, warns, err
	}
	node, line, overlay, err := pinOnly(doc)
	if err != nil {
		return Config{}, Source{}, nil, err
	}
	if !overlay {
		cfg, warns, err := ParseWith(UserDataName, doc, opt)
		return cfg, Source{Name: UserDataName}, warns, err
	}
	cfg, warns, err := LoadWith(path, opt)
	src := Source{Name: path, PinnedBy: UserDataName}
	if err != nil {
		return Config{}, src, warns, err
	}
	if _, ok := cfg.NodeByID(node); !ok {
		return Config{}, src, warns, &Problems{File: UserDataName, Errors: []FieldError{{Line: line, Field: "node",
			Msg: fmt.Sprintf("%d is not a node of ensemble %s in %s", node, cfg.Ensemble, path)}}}
	}
	cfg.Node = node
	return cfg, src, warns, nil
}

// pinOnly reports whether doc is a pin: a mapping whose only key is node,
// with that node and its line. A document with other keys is a whole config.
func pinOnly(doc []byte) (node, line int, ok bool, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil || len(root.Content) != 1 {
		return 0, 0, false, nil // Parse reports it, with its line
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 || m.Content[0].Value != "node" {
		return 0, 0, false, nil
	}
	v := m.Content[1]
	n, convErr := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || convErr != nil || n < 1 || n > 255 {
		return 0, 0, false, &Problems{File: UserDataName, Errors: []FieldError{{Line: v.Line, Field: "node",
			Msg: fmt.Sprintf("%s is not a node id (1..255)", describe(v))}}}
	}
	return n, v.Line, true, nil
}

// RefusedHoldOf reads health.refused_hold from a config document that may
// be invalid elsewhere: a boot refused for its config still holds as long
// as the operator asked. ok is false when the document has no valid value
// there (the caller uses the default).
func RefusedHoldOf(doc []byte) (hold time.Duration, ok bool) {
	var v struct {
		Health struct {
			RefusedHold string `yaml:"refused_hold"`
		} `yaml:"health"`
	}
	if yaml.Unmarshal(doc, &v) != nil || v.Health.RefusedHold == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v.Health.RefusedHold)
	if err != nil || d < 0 || d > time.Hour {
		return 0, false
	}
	return d, true
}
