package claim

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Result is what the claim produced, printed as JSON by `zkaas-firstboot claim`.
type Result struct {
	Node        int
	ENI         string
	IP          netip.Addr
	MAC         net.HardwareAddr
	SubnetID    string
	DeviceIndex int32
	Volume      string
	Device      string
	// Initialized is when the volume's initialized tag says it was first
	// formatted; zero means it never was. A tag that is present but not a
	// time reads as long ago (see initializedAt): only a formatted volume
	// gets the tag, so it must never be formatted again.
	Initialized time.Time
	Reused      bool
	Phases      Phases
	Calls       int
}

// resultJSON is Result as `zkaas-firstboot claim` prints it: the MAC in its
// colon form (net.HardwareAddr alone would marshal as base64), the fields
// in the order operators know.
type resultJSON struct {
	Node        int        `json:"node"`
	ENI         string     `json:"eni_id"`
	IP          netip.Addr `json:"ip"`
	MAC         string     `json:"mac"`
	SubnetID    string     `json:"subnet_id"`
	DeviceIndex int32      `json:"device_index"`
	Volume      string     `json:"volume_id"`
	Device      string     `json:"device"`
	Initialized time.Time  `json:"initialized,omitzero"`
	Reused      bool       `json:"reused"`
	Phases      Phases     `json:"phases"`
	Calls       int        `json:"ec2_calls"`
}

// MarshalJSON writes the result with string IP, MAC and RFC 3339 time.
func (r Result) MarshalJSON() ([]byte, error) {
	mac := ""
	if len(r.MAC) > 0 {
		mac = r.MAC.String()
	}
	return json.Marshal(resultJSON{
		Node: r.Node, ENI: r.ENI, IP: r.IP, MAC: mac, SubnetID: r.SubnetID, DeviceIndex: r.DeviceIndex,
		Volume: r.Volume, Device: r.Device, Initialized: r.Initialized, Reused: r.Reused, Phases: r.Phases, Calls: r.Calls,
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var mac net.HardwareAddr
	if j.MAC != "" {
		var err error
		if mac, err = net.ParseMAC(j.MAC); err != nil {
			return fmt.Errorf("claim result: mac: %w", err)
		}
	}
	*r = Result{
		Node: j.Node, ENI: j.ENI, IP: j.IP, MAC: mac, SubnetID: j.SubnetID, DeviceIndex: j.DeviceIndex,
		Volume: j.Volume, Device: j.Device, Initialized: j.Initialized, Reused: j.Reused, Phases: j.Phases, Calls: j.Calls,
	}
	return nil
}

// Peer is another node's volume and what its tags say about its data.
type Peer struct {
	Node   int
	Volume string
	// InitializedAt is when the volume was first formatted, from its
	// initialized tag; for an untagged volume restored from a snapshot it is
	// long ago (see peerInitializedAt); zero means it never was.
	InitializedAt time.Time
}

// Phases are how long each part of the claim took.
// Their JSON (the *_ms keys) is MarshalJSON's, so the fields carry no tags.
type Phases struct {
	Discover time.Duration
	ENI      time.Duration
	Volume   time.Duration
	Wait     time.Duration
	Total    time.Duration
}

// MarshalJSON writes the phases in milliseconds, the unit operators compare.
func (p Phases) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(map[string]float64{
		"discover_ms": ms(p.Discover), "eni_ms": ms(p.ENI), "volume_ms": ms(p.Volume),
		"wait_ms": ms(p.Wait), "total_ms": ms(p.Total),
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Phases) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d := func(k string) time.Duration { return time.Duration(m[k] * float64(time.Millisecond)) }
	*p = Phases{Discover: d("discover_ms"), ENI: d("eni_ms"), Volume: d("volume_ms"), Wait: d("wait_ms"), Total: d("total_ms")}
	return nil
}
