//! The resource types the server knows: their API group, version, kind and
//! the names discovery advertises. Everything else in the crate is generic
//! over these descriptors, so adding a type is one entry here.

/// A resource type served by the [`ApiServer`](crate::ApiServer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Core `v1` ConfigMaps (`/api/v1/.../configmaps`).
    ConfigMaps,
    /// Core `v1` Services (`/api/v1/.../services`).
    Services,
    /// `discovery.k8s.io/v1` EndpointSlices.
    EndpointSlices,
    /// `networking.k8s.io/v1` Ingresses (namespaced; IngressClasses, which
    /// are cluster-scoped, are not served).
    Ingresses,
}

impl Resource {
    /// Every served resource, in discovery order.
    pub const ALL: [Resource; 4] = [
        Resource::ConfigMaps,
        Resource::Services,
        Resource::EndpointSlices,
        Resource::Ingresses,
    ];

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Resource::ConfigMaps | Resource::Services => "",
            Resource::EndpointSlices => "discovery.k8s.io",
            Resource::Ingresses => "networking.k8s.io",
        }
    }

    /// The `apiVersion` of objects of this type (`v1`, `discovery.k8s.io/v1`).
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::ConfigMaps | Resource::Services => "v1",
            Resource::EndpointSlices => "discovery.k8s.io/v1",
            Resource::Ingresses => "networking.k8s.io/v1",
        }
    }

    /// The kind of a single object.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::ConfigMaps => "ConfigMap",
            Resource::Services => "Service",
            Resource::EndpointSlices => "EndpointSlice",
            Resource::Ingresses => "Ingress",
        }
    }

    /// The plural name used in URLs.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::ConfigMaps => "configmaps",
            Resource::Services => "services",
            Resource::EndpointSlices => "endpointslices",
            Resource::Ingresses => "ingresses",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            Resource::ConfigMaps => "configmap",
            Resource::Services => "service",
            Resource::EndpointSlices => "endpointslice",
            Resource::Ingresses => "ingress",
        }
    }

    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::ConfigMaps => &["cm"],
            Resource::Services => &["svc"],
            Resource::EndpointSlices => &[],
            Resource::Ingresses => &["ing"],
        }
    }

    /// The name errors use for the type: the plural, qualified by the group
    /// outside the core group (`endpointslices.discovery.k8s.io`), as the
    /// real server's messages do.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// Finds the resource for an `apiVersion` and `kind` pair.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.api_version() == api_version && r.kind() == kind)
    }

    /// Finds the resource served under a group-version path and plural name.
    pub(crate) fn from_path(api_version: &str, plural: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.api_version() == api_version && r.plural() == plural)
    }

    /// Whether writes bump `metadata.generation` (types with a spec-like
    /// body the real server tracks generations for).
    pub(crate) fn has_generation(self) -> bool {
        matches!(self, Resource::EndpointSlices | Resource::Ingresses)
    }

    /// The named API groups served (not the core group), in discovery
    /// order.
    pub(crate) fn groups() -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = Vec::new();
        for group in Resource::ALL.map(Resource::group) {
            if !group.is_empty() && !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }
}
