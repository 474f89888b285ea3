name 'app'
version '1.0.0'
description 'app, configured from the env file provbus-consumer writes'
chef_version '>= 15'
