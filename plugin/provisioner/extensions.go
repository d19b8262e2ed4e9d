package provisioner

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/routing"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/plugin/role"
)

// zkaasExtensions are what the zkaas roles need beyond the generic engine:
// the artefacts the firstboot code owns (units, the networkd drop-in), so
// the image gets exactly the bytes that code was tested with, and ensemble
// configs validated by the loader zkaas-firstboot itself uses at boot.
//
// One set serves one Prepare: it caches the ensemble configs its variables
// named, so a config two roles share is read and reported once per role
// but parsed once.
func zkaasExtensions() *role.Extensions {
	e := &ensembles{loaded: map[string]loadedEnsemble{}}
	return &role.Extensions{
		Funcs: template.FuncMap{
			// unit returns a zkaas systemd unit by name.
			"unit": func(name string) (string, error) {
				b, err := systemd.Unit(name)
				return string(b), err
			},
			// networkdConf returns the MAC-independent networkd.conf drop-in
			// (the per-ENI .network file is written at boot).
			"networkdConf": func() string {
				return string(routing.NetworkdFiles(nil)[routing.NetworkdConfPath])
			},
			// ensemble loads an ensemble config: (ensemble .ensemble_config).Volume.MountPoint.
			"ensemble": e.config,
			// readWriteDropIn returns zookeeper.service's drop-in for a data
			// volume mounted elsewhere than the default ("" for the default).
			"readWriteDropIn": func(mountPoint string) (string, error) {
				b, err := systemd.ReadWriteDropIn(mountPoint)
				return string(b), err
			},
		},
		VarTypes: map[string]role.VarType{
			// ensemble: a path to an ensemble config, validated by
			// firstboot's own loader; its absolute path in templates.
			"ensemble": {Check: e.check},
		},
	}
}

type ensembles struct {
	// loaded holds every config loaded, by absolute path, with the error
	// loading it.
	loaded map[string]loadedEnsemble
}

type loadedEnsemble struct {
	cfg ensemble.Config
	err error
}

func (e *ensembles) load(abs string) (ensemble.Config, error) {
	l, ok := e.loaded[abs]
	if !ok {
		cfg, _, err := ensemble.Load(abs)
		l = loadedEnsemble{cfg, err}
		e.loaded[abs] = l
	}
	return l.cfg, l.err
}

// check is the ensemble variable type.
func (e *ensembles) check(raw string) (any, error) {
	p, err := role.ReadableFile(raw)
	if err != nil {
		return p, err
	}
	if _, err := e.load(p); err != nil {
		return p, fmt.Errorf("not a valid ensemble config:\n    %s", strings.ReplaceAll(err.Error(), "\n", "\n    "))
	}
	return p, nil
}

// config is the ensemble template function. A config that failed its
// variable's check fails here too, and the engine then reports nothing
// more: the variable's problem already says what is wrong.
func (e *ensembles) config(p string) (ensemble.Config, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return ensemble.Config{}, err
	}
	return e.load(abs)
}
