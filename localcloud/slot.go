package localcloud

import (
	"fmt"
	"strconv"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// The tags that make an ENI and a volume one ZooKeeper node's slot.
const (
	TagEnsemble = "zkaas:ensemble"
	TagNode     = "zkaas:node"
)

// Slot is one node's identity in AWS: its ENI (with the node's IP) and its
// volume, in one AZ, both tagged with the ensemble and the node id.
type Slot struct {
	Ensemble string
	Node     int
	AZ       string
	ENI      ec2sim.NetworkInterface
	Volume   ec2sim.Volume
}

// CreateSlot creates node's ENI with ip and its volume of volumeGiB, in az,
// both tagged zkaas:ensemble=<ensemble> and zkaas:node=<node>.
func (c *Cloud) CreateSlot(ensemble string, node int, az, ip string, volumeGiB int32) (Slot, error) {
	tags := map[string]string{TagEnsemble: ensemble, TagNode: strconv.Itoa(node)}
	eni, err := c.CreateNetworkInterface(az, ip, tags)
	if err != nil {
		return Slot{}, fmt.Errorf("slot %s/%d: %w", ensemble, node, err)
	}
	vol, err := c.CreateVolume(az, volumeGiB, tags)
	if err != nil {
		return Slot{}, fmt.Errorf("slot %s/%d: %w", ensemble, node, err)
	}
	return Slot{Ensemble: ensemble, Node: node, AZ: az, ENI: eni, Volume: vol}, nil
}
