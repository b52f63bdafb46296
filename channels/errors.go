package channels

import "errors"

// ErrInvalidConfig is wrapped by the errors of a channel's constructor
// when its configuration cannot work; the message names the field.
var ErrInvalidConfig = errors.New("channels: invalid configuration")
