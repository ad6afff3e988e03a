// Command keyguard is the operator command line. `keyguard dev` runs the whole system on loopback
// (what `make run` does): a real S3 server, the Event Notifications emulator, the three functions
// and a simulated Db2, through a scripted week in accelerated time, printing a timeline.
package main
