module github.com/signoff/approval

go 1.26

require (
	github.com/gobwas/glob v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gowebpki/jcs v1.0.2 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
)
