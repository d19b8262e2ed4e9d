package ec2sim

import (
	"fmt"
	"net/http"
)

// APIError is an EC2 error as it goes on the wire: HTTP status, code and
// message. The Go admin API returns it too when the cause is an EC2-style
// condition (unknown id, address in use, ...).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Error codes the simulator returns that a client may branch on (a few
// rarer ones appear only as literals). Codes and messages are EC2's own,
// taken from real responses where they are known.
const (
	CodeAttachmentLimitExceeded      = "AttachmentLimitExceeded"
	CodeAuthFailure                  = "AuthFailure"
	CodeDryRunOperation              = "DryRunOperation"
	CodeIncorrectInstanceState       = "IncorrectInstanceState"
	CodeIncorrectState               = "IncorrectState"
	CodeInvalidAction                = "InvalidAction"
	CodeInvalidAttachmentNotFound    = "InvalidAttachmentID.NotFound"
	CodeInvalidID                    = "InvalidID"
	CodeInvalidInstanceIDNotFound    = "InvalidInstanceID.NotFound"
	CodeInvalidENIInUse              = "InvalidNetworkInterface.InUse"
	CodeInvalidENIIDNotFound         = "InvalidNetworkInterfaceID.NotFound"
	CodeInvalidPaginationToken       = "InvalidPaginationToken"
	CodeInvalidParameterCombo        = "InvalidParameterCombination"
	CodeInvalidParameterValue        = "InvalidParameterValue"
	CodeInvalidSubnetIDNotFound      = "InvalidSubnetID.NotFound"
	CodeInvalidVolumeNotFound        = "InvalidVolume.NotFound"
	CodeInvalidVolumeZoneMismatch    = "InvalidVolume.ZoneMismatch"
	CodeInvalidAttachmentNotFoundVol = "InvalidAttachment.NotFound"
	CodeMissingAction                = "MissingAction"
	CodeMissingParameter             = "MissingParameter"
	CodeOperationNotPermitted        = "OperationNotPermitted"
	CodeRequestLimitExceeded         = "RequestLimitExceeded"
	CodeUnsupportedOperation         = "UnsupportedOperation"
	CodeVolumeInUse                  = "VolumeInUse"
)

func clientError(code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errThrottled() *APIError {
	return &APIError{Status: http.StatusServiceUnavailable, Code: CodeRequestLimitExceeded, Message: "Request limit exceeded."}
}

func errAuth() *APIError {
	return &APIError{Status: http.StatusUnauthorized, Code: CodeAuthFailure, Message: "AWS was not able to validate the provided access credentials"}
}

func errDryRun() *APIError {
	return &APIError{Status: http.StatusPreconditionFailed, Code: CodeDryRunOperation, Message: "Request would have succeeded, but DryRun flag is set."}
}

func errMissing(param string) *APIError {
	return clientError(CodeMissingParameter, "The request must contain the parameter %s", param)
}

// errENIInUse is EC2's in-use message. EC2 documents two codes for it: the
// error codes page (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
// lists InvalidNetworkInterface.InUse and adds that "you may also receive
// the InvalidParameterValue error". The simulator answers a real conflict with InvalidParameterValue
// unless Faults.ENIInUseCodeRate draws the other, and an injected race
// (Faults.InUseRaceRate) with InvalidNetworkInterface.InUse.
func errENIInUse(code, eniID string) *APIError {
	return clientError(code, "Interface: [%s] in use.", eniID)
}
