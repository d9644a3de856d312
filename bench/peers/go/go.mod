module baton/bench/peers/go

go 1.19
