package claim

import (
	"encoding/json"
	"time"
)

// Result is what the claim produced, printed as JSON by `zkaas-firstboot claim`.
type Result struct {
	Node        int    `json:"node"`
	ENI         string `json:"eni_id"`
	IP          string `json:"ip"`
	MAC         string `json:"mac"`
	SubnetID    string `json:"subnet_id"`
	DeviceIndex int32  `json:"device_index"`
	Volume      string `json:"volume_id"`
	Device      string `json:"device"`
	// Initialized is the value of the volume's initialized tag ("" = never
	// formatted); Peers carries the same for the other nodes' volumes, which
	// the disk and ZooKeeper steps need to decide about empty data trees.
	Initialized string     `json:"initialized,omitempty"`
	Peers       []PeerInit `json:"peers"`
	Reused      bool       `json:"reused"`
	Phases      Phases     `json:"phases"`
	Calls       int        `json:"ec2_calls"`
}

// PeerInit is another node's volume and its initialized tag.
type PeerInit struct {
	Node        int    `json:"node"`
	Volume      string `json:"volume_id"`
	Initialized string `json:"initialized,omitempty"`
	// Snapshot is the snapshot the volume was restored from: EC2 does not
	// copy tags onto a restored volume, so an untagged one may still hold
	// data.
	Snapshot string `json:"snapshot_id,omitempty"`
}

// Phases are how long each part of the claim took.
type Phases struct {
	Discover time.Duration `json:"discover"`
	ENI      time.Duration `json:"eni"`
	Volume   time.Duration `json:"volume"`
	Wait     time.Duration `json:"wait"`
	Total    time.Duration `json:"total"`
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
