package localcloud

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestBootStorm: five instances over three AZs launch at once and each
// attaches its slot's ENI and volume at once; every instance ends up with
// exactly its own devices. Close then tears down a cloud with everything
// still attached and mounted.
func TestBootStorm(t *testing.T) {
	opts := fastSim
	opts.Latency = ec2sim.Latency{RoundTrip: 5 * time.Millisecond, ENIAttach: 200 * time.Millisecond, VolumeAttach: 300 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts})
	azs := []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a", "us-east-1b"}
	slots := make([]Slot, len(azs))
	for i, az := range azs {
		ip := fmt.Sprintf("10.0.%c.%d", az[len(az)-1]-'a'+'1', 11+i)
		var err error
		if slots[i], err = c.CreateSlot("storm", i+1, az, ip, 1); err != nil {
			t.Fatal(err)
		}
	}

	insts := make([]*Instance, len(azs))
	errs := make([]error, len(azs))
	var wg sync.WaitGroup
	for i, s := range slots {
		wg.Go(func() {
			inst, err := c.Launch(t.Context(), s.AZ)
			if err != nil {
				errs[i] = err
				return
			}
			insts[i] = inst
			api := ec2From(inst)
			if _, err := api.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(s.ENI.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
			}); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = api.AttachVolume(t.Context(), &ec2.AttachVolumeInput{
				VolumeId: aws.String(s.Volume.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	eventually(t, "all attachments", func() bool {
		for _, s := range slots {
			if eniStatus(c, s.ENI.ID) != ec2sim.AttachAttached || volumeState(c, s.Volume.ID) != ec2sim.AttachAttached {
				return false
			}
		}
		return true
	})

	for i, inst := range insts {
		s := slots[i]
		mac, _ := net.ParseMAC(s.ENI.MAC)
		byID := "/dev/disk/by-id/" + disk.EBSByIDName(s.Volume.ID)
		if l := linkByMAC(t, netlinkIn(t, inst.NetNS), mac); l == nil || l.Attrs().Name != "ens6" {
			t.Errorf("%s: ENI %s of node %d is %v, want ens6", inst.ID, s.ENI.ID, s.Node, l)
		}
		dev := resolve(t, inst, s.Volume.ID)
		if loops := loopOf(t, volumeFile(t, c, s.Volume.ID)); len(loops) != 1 || dev != "/dev/"+loops[0].Name {
			t.Errorf("%s: node %d's volume resolved to %s, its file is on %v", inst.ID, s.Node, dev, loops)
		}
		run(t, inst, "mkfs.ext4 -q "+byID+" && mount "+byID+" /mnt")
		for j, other := range insts {
			if j != i && (exists(other.Path(byID)) || linkByMAC(t, netlinkIn(t, other.NetNS), mac) != nil) {
				t.Errorf("%s sees node %d's devices, which %s holds", other.ID, s.Node, inst.ID)
			}
		}
	}
}
