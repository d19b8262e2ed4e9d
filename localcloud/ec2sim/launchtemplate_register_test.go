package ec2sim

// Until the launch template calls are in the dispatch table of sim.go,
// the tests register them here.
func init() {
	for name, a := range launchTemplateActions {
		if _, ok := actions[name]; !ok {
			actions[name] = a
		}
	}
}
