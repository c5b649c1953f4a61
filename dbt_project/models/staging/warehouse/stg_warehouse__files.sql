-- raw.files, the log of every file loaded: where each source_file came from.

with source as (

    select * from {{ source('raw', 'files') }}

),

renamed as (

    select
        sha256 as source_file,
        source,
        replace(raw_table, 'raw.', '') as raw_table,
        url,
        case
            when url like 'manual:%' then 'manual'
            when regexp_matches(url, '^https?://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?/')
                then 'replay_mirror'
            else 'publisher'
        end as data_origin,
        -- The file's own record (set when it was parsed, from its name or returnwatch's
        -- marker in it), never inferred from where it was fetched.
        coalesce(constructed, false) as constructed,
        vintage,
        fetched_at,
        rows_loaded,
        loaded_at
    from source

)

select * from renamed
