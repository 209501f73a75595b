//! Issuing SM2 X.509 certificates: the platform certificate, test PKIs and the member simulator.
