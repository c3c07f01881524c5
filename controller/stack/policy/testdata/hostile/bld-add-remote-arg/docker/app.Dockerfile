FROM scratch
ARG META=./meta
ENV SRC="${META}/latest/meta-data/iam/security-credentials/"
ADD $SRC /creds
