package ec2sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Seed is an initial state, as the standalone command reads it from YAML:
//
//	subnets:
//	  - name: a                        # how the entries below refer to it
//	    availabilityZone: us-east-1a
//	    cidrBlock: 10.0.1.0/24
//	networkInterfaces:
//	  - subnet: a
//	    privateIpAddress: 10.0.1.11    # optional: the next free address
//	    tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}
//	volumes:
//	  - availabilityZone: us-east-1a
//	    sizeGiB: 10
//	    tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}
//	instances:
//	  - subnet: a
//	    count: 2                       # optional, default 1
//	    instanceType: m5.large         # optional, default Options.InstanceType
//
// Unknown fields are errors.
type Seed struct {
	Subnets []struct {
		Name string `yaml:"name"`
		AZ   string `yaml:"availabilityZone"`
		CIDR string `yaml:"cidrBlock"`
	} `yaml:"subnets"`
	NetworkInterfaces []struct {
		Subnet    string            `yaml:"subnet"`
		PrivateIP string            `yaml:"privateIpAddress"`
		Tags      map[string]string `yaml:"tags"`
	} `yaml:"networkInterfaces"`
	Volumes []struct {
		AZ      string            `yaml:"availabilityZone"`
		SizeGiB int32             `yaml:"sizeGiB"`
		Tags    map[string]string `yaml:"tags"`
	} `yaml:"volumes"`
	Instances []struct {
		Subnet       string `yaml:"subnet"`
		Count        int    `yaml:"count"`
		InstanceType string `yaml:"instanceType"`
	} `yaml:"instances"`
}

// Seeded is what ApplySeed created.
type Seeded struct {
	Subnets           map[string]string  `json:"subnets"` // seed name -> subnet id
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces"`
	Volumes           []Volume           `json:"volumes"`
	Instances         []Instance         `json:"instances"`
}

// ParseSeed decodes a seed document.
func ParseSeed(data []byte) (Seed, error) {
	var seed Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&seed); err != nil && !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("parse seed: %w", err)
	}
	return seed, nil
}

// ApplySeed creates the seed's resources, subnets first. It stops at the
// first error; what was created before stays.
func (s *Sim) ApplySeed(seed Seed) (Seeded, error) {
	out := Seeded{Subnets: map[string]string{}}
	for i, sub := range seed.Subnets {
		if sub.Name == "" {
			return out, fmt.Errorf("seed subnets[%d]: name is required", i)
		}
		if _, dup := out.Subnets[sub.Name]; dup {
			return out, fmt.Errorf("seed subnets[%d]: name %q used twice", i, sub.Name)
		}
		id, err := s.CreateSubnet(sub.AZ, sub.CIDR)
		if err != nil {
			return out, fmt.Errorf("seed subnets[%d] %q: %w", i, sub.Name, err)
		}
		out.Subnets[sub.Name] = id
	}
	subnet := func(what string, i int, name string) (string, error) {
		id, ok := out.Subnets[name]
		if !ok {
			return "", fmt.Errorf("seed %s[%d]: unknown subnet %q", what, i, name)
		}
		return id, nil
	}
	for i, n := range seed.NetworkInterfaces {
		id, err := subnet("networkInterfaces", i, n.Subnet)
		if err != nil {
			return out, err
		}
		eni, err := s.CreateNetworkInterface(id, n.PrivateIP, n.Tags)
		if err != nil {
			return out, fmt.Errorf("seed networkInterfaces[%d]: %w", i, err)
		}
		out.NetworkInterfaces = append(out.NetworkInterfaces, eni)
	}
	for i, v := range seed.Volumes {
		vol, err := s.CreateVolume(v.AZ, v.SizeGiB, v.Tags)
		if err != nil {
			return out, fmt.Errorf("seed volumes[%d]: %w", i, err)
		}
		out.Volumes = append(out.Volumes, vol)
	}
	for i, inst := range seed.Instances {
		id, err := subnet("instances", i, inst.Subnet)
		if err != nil {
			return out, err
		}
		count := inst.Count
		if count == 0 {
			count = 1
		}
		if count < 0 {
			return out, fmt.Errorf("seed instances[%d]: count %d is negative", i, count)
		}
		for range count {
			in, err := s.RunInstanceOfType(id, inst.InstanceType)
			if err != nil {
				return out, fmt.Errorf("seed instances[%d]: %w", i, err)
			}
			out.Instances = append(out.Instances, in)
		}
	}
	return out, nil
}
