package ec2sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// adminHandler serves the Go admin API as JSON under /_sim/, for the
// standalone command's clients. It is not EC2: no signature, no latency,
// no throttling, not counted in Stats.
//
//	POST /_sim/subnets                     {"availabilityZone","cidrBlock"} -> {"subnetId"}
//	POST /_sim/instances                   {"subnetId","instanceType"} -> Instance (type optional: Options.InstanceType)
//	GET  /_sim/instances/{id}              -> Instance
//	POST /_sim/instances/{id}/terminate
//	POST /_sim/instances/{id}/reboot       (RebootInstance)
//	POST /_sim/instances/{id}/stop         (StopInstance)
//	POST /_sim/instances/{id}/start        (StartInstance)
//	POST /_sim/network-interfaces          {"subnetId","privateIpAddress","tags"} -> NetworkInterface
//	GET  /_sim/network-interfaces/{id}     -> NetworkInterface
//	POST /_sim/volumes                     {"availabilityZone","sizeGiB","tags"} -> Volume
//	GET  /_sim/volumes/{id}                -> Volume
//	PUT  /_sim/faults                      Faults
//	PUT  /_sim/lag                         {"instances","volumes","networkInterfaces","newIds": "300ms", "random": true} (SetLag)
//	POST /_sim/stick/{id}                  (StickNextAttach)
//	POST /_sim/hide/{id}                   (HideNextAttach)
//	GET  /_sim/stats                       -> Stats
//	POST /_sim/stats/reset
//
// Errors are {"error": "..."} with status 400, or 404 for an unknown id.
func (s *Sim) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_sim/subnets", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			AZ   string `json:"availabilityZone"`
			CIDR string `json:"cidrBlock"`
		}
		if decode(w, r, &in) {
			id, err := s.CreateSubnet(in.AZ, in.CIDR)
			reply(w, map[string]string{"subnetId": id}, err)
		}
	})
	mux.HandleFunc("POST /_sim/instances", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			SubnetID     string `json:"subnetId"`
			InstanceType string `json:"instanceType"`
		}
		if decode(w, r, &in) {
			inst, err := s.RunInstanceOfType(in.SubnetID, in.InstanceType)
			reply(w, inst, err)
		}
	})
	mux.HandleFunc("GET /_sim/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		inst, ok := s.Instance(r.PathValue("id"))
		replyFound(w, inst, ok)
	})
	mux.HandleFunc("POST /_sim/instances/{id}/terminate", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.TerminateInstance(r.PathValue("id")))
	})
	mux.HandleFunc("POST /_sim/instances/{id}/reboot", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.RebootInstance(r.PathValue("id")))
	})
	mux.HandleFunc("POST /_sim/instances/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.StopInstance(r.PathValue("id")))
	})
	mux.HandleFunc("POST /_sim/instances/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.StartInstance(r.PathValue("id")))
	})
	mux.HandleFunc("POST /_sim/network-interfaces", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			SubnetID  string            `json:"subnetId"`
			PrivateIP string            `json:"privateIpAddress"`
			Tags      map[string]string `json:"tags"`
		}
		if decode(w, r, &in) {
			n, err := s.CreateNetworkInterface(in.SubnetID, in.PrivateIP, in.Tags)
			reply(w, n, err)
		}
	})
	mux.HandleFunc("GET /_sim/network-interfaces/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := s.NetworkInterface(r.PathValue("id"))
		replyFound(w, n, ok)
	})
	mux.HandleFunc("POST /_sim/volumes", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			AZ      string            `json:"availabilityZone"`
			SizeGiB int32             `json:"sizeGiB"`
			Tags    map[string]string `json:"tags"`
		}
		if decode(w, r, &in) {
			v, err := s.CreateVolume(in.AZ, in.SizeGiB, in.Tags)
			reply(w, v, err)
		}
	})
	mux.HandleFunc("GET /_sim/volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.Volume(r.PathValue("id"))
		replyFound(w, v, ok)
	})
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if decode(w, r, &f) {
			s.SetFaults(f)
			reply(w, nil, nil)
		}
	})
	mux.HandleFunc("PUT /_sim/lag", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Instances         string `json:"instances"`
			Volumes           string `json:"volumes"`
			NetworkInterfaces string `json:"networkInterfaces"`
			NewIDs            string `json:"newIds"`
			Random            bool   `json:"random"`
		}
		if !decode(w, r, &in) {
			return
		}
		l := Lag{Random: in.Random}
		for _, f := range []struct {
			name string
			in   string
			out  *time.Duration
		}{{"instances", in.Instances, &l.Instances}, {"volumes", in.Volumes, &l.Volumes},
			{"networkInterfaces", in.NetworkInterfaces, &l.NetworkInterfaces}, {"newIds", in.NewIDs, &l.NewIDs}} {
			if f.in == "" {
				continue
			}
			d, err := time.ParseDuration(f.in)
			if err != nil || d < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("%s: %q is not a duration like 300ms", f.name, f.in)})
				return
			}
			*f.out = d
		}
		s.SetLag(l)
		reply(w, nil, nil)
	})
	mux.HandleFunc("POST /_sim/stick/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.StickNextAttach(r.PathValue("id"))
		reply(w, nil, nil)
	})
	mux.HandleFunc("POST /_sim/hide/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.HideNextAttach(r.PathValue("id"))
		reply(w, nil, nil)
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.Stats(), nil)
	})
	mux.HandleFunc("POST /_sim/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		reply(w, nil, nil)
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode request: " + err.Error()})
		return false
	}
	return true
}

// reply writes v, or err: 404 when EC2 would call the id unknown.
func reply(w http.ResponseWriter, v any, err error) {
	var apiErr *APIError
	switch {
	case err == nil && v == nil:
		w.WriteHeader(http.StatusNoContent)
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.As(err, &apiErr) && isNotFound(apiErr.Code):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

func replyFound(w http.ResponseWriter, v any, ok bool) {
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func isNotFound(code string) bool {
	switch code {
	case CodeInvalidInstanceIDNotFound, CodeInvalidENIIDNotFound, CodeInvalidVolumeNotFound, CodeInvalidSubnetIDNotFound:
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
